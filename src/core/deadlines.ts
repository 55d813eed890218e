import FlatQueue from 'flatqueue';

/**
 * Items due at a time, earliest first (flatqueue's binary heap): housekeeping pops what is
 * due now instead of walking every flight. Entries are not removed when their item changes
 * or goes; whoever pops one checks that it is still due (and schedules it again if its time
 * moved later). `compact` drops the entries of items that went, so a churning workload
 * does not keep one dead entry per replaced flight until its old deadline.
 */
export class Deadlines<T> {
  private heap = new FlatQueue<T>();

  get size(): number {
    return this.heap.length;
  }

  schedule(item: T, at: number): void {
    this.heap.push(item, at);
  }

  /** Pops every entry due by `now`, earliest first. */
  *due(now: number): Generator<T> {
    while (this.heap.length > 0 && (this.heap.peekValue() as number) <= now) yield this.heap.pop() as T;
  }

  /**
   * Keeps only the entries `live` says are still wanted, when the heap has grown past twice
   * `expected` (the number of live items) plus slack: O(n) now and then, instead of a dead
   * entry per replaced or deleted item until its deadline.
   */
  compact(expected: number, live: (item: T) => boolean): void {
    if (this.heap.length <= 2 * expected + 1024) return;
    const keep = new FlatQueue<T>();
    for (let i = 0; i < this.heap.length; i++) {
      const item = this.heap.ids[i] as T;
      if (live(item)) keep.push(item, this.heap.values[i] as number);
    }
    this.heap = keep;
  }

  clear(): void {
    this.heap = new FlatQueue<T>();
  }
}
