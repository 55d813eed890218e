import type { Placed } from './flight.js';

/**
 * Eviction order of one storage type across every class that uses it: lower `priority`
 * first, least recently used first within a priority. Each bucket is a Map, whose
 * insertion order is the recency order; touching re-inserts at the end. O(1) per
 * operation apart from the (few) distinct priorities.
 */
export class EvictionOrder {
  private readonly buckets = new Map<number, Map<Placed, true>>();
  /** Distinct priorities, ascending. */
  private priorities: number[] = [];
  private readonly priorityOf = new Map<Placed, number>();

  get size(): number {
    return this.priorityOf.size;
  }

  add(placed: Placed, priority: number): void {
    let bucket = this.buckets.get(priority);
    if (!bucket) {
      bucket = new Map();
      this.buckets.set(priority, bucket);
      this.priorities = [...this.buckets.keys()].sort((a, b) => a - b);
    }
    bucket.set(placed, true);
    this.priorityOf.set(placed, priority);
  }

  remove(placed: Placed): void {
    const priority = this.priorityOf.get(placed);
    if (priority === undefined) return;
    this.priorityOf.delete(placed);
    this.buckets.get(priority)?.delete(placed);
  }

  /** Marks a copy as just used. */
  touch(placed: Placed): void {
    const priority = this.priorityOf.get(placed);
    if (priority === undefined) return;
    const bucket = this.buckets.get(priority) as Map<Placed, true>;
    bucket.delete(placed);
    bucket.set(placed, true);
  }

  /**
   * Copies in eviction order. Iterates the live Maps (safe while the caller removes the
   * current entry), so a reservation under pressure does not copy the whole order.
   */
  *candidates(): Generator<Placed> {
    for (const priority of this.priorities) {
      const bucket = this.buckets.get(priority);
      if (bucket) yield* bucket.keys();
    }
  }
}
