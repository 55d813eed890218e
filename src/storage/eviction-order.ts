import type { Placed } from './flight.js';

/** One priority's copies, least recently used first: an intrusive list through the copies themselves. */
interface Bucket {
  head: Placed | undefined;
  tail: Placed | undefined;
}

/**
 * Eviction order of one storage type across every class that uses it: lower `priority`
 * first, least recently used first within a priority. Each priority is a doubly linked
 * list threaded through the copies (`Placed.orderPrev/orderNext`), so adding, touching and removing are
 * O(1) and cost no map entry per copy (a million flights' worth of maps is most of their
 * bookkeeping). O(1) per operation apart from the (few) distinct priorities.
 */
export class EvictionOrder {
  private readonly buckets = new Map<number, Bucket>();
  /** Distinct priorities, ascending. */
  private priorities: number[] = [];
  private count = 0;

  get size(): number {
    return this.count;
  }

  add(placed: Placed, priority: number): void {
    if (placed.orderPriority !== undefined) this.remove(placed);
    let bucket = this.buckets.get(priority);
    if (!bucket) {
      bucket = { head: undefined, tail: undefined };
      this.buckets.set(priority, bucket);
      this.priorities = [...this.buckets.keys()].sort((a, b) => a - b);
    }
    placed.orderPriority = priority;
    placed.orderPrev = bucket.tail;
    placed.orderNext = undefined;
    if (bucket.tail) bucket.tail.orderNext = placed;
    else bucket.head = placed;
    bucket.tail = placed;
    this.count++;
  }

  remove(placed: Placed): void {
    const priority = placed.orderPriority;
    if (priority === undefined) return;
    const bucket = this.buckets.get(priority) as Bucket;
    if (placed.orderPrev) placed.orderPrev.orderNext = placed.orderNext;
    else bucket.head = placed.orderNext;
    if (placed.orderNext) placed.orderNext.orderPrev = placed.orderPrev;
    else bucket.tail = placed.orderPrev;
    placed.orderPriority = undefined;
    placed.orderPrev = undefined;
    placed.orderNext = undefined;
    this.count--;
  }

  /** Marks a copy as just used: to the end of its priority's list. */
  touch(placed: Placed): void {
    const priority = placed.orderPriority;
    if (priority === undefined || !placed.orderNext) return; // not listed, or already the most recent
    this.remove(placed);
    this.add(placed, priority);
  }

  /**
   * Copies in eviction order. Follows the live lists (the caller may remove the copy it
   * was just given), so a reservation under pressure does not copy the whole order.
   */
  *candidates(): Generator<Placed> {
    for (const priority of this.priorities) {
      let placed = this.buckets.get(priority)?.head;
      // A copy taken out of the list while the caller worked stops this list's walk.
      while (placed && placed.orderPriority === priority) {
        const next = placed.orderNext;
        yield placed;
        placed = next;
      }
    }
  }
}
