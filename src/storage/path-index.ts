import { SortedMap } from '../core/sorted-map.js';
import type { FlightVersion } from './flight.js';

/**
 * The visible versions by path, in path order (a B+ tree): a prefix's flights are one
 * contiguous range, so prefix work costs what matches, not the number of flights.
 */
export class PathIndex {
  private readonly versions: SortedMap<string, FlightVersion> = new SortedMap();

  get(path: string): FlightVersion | undefined {
    return this.versions.get(path);
  }

  set(path: string, version: FlightVersion): void {
    this.versions.set(path, version);
  }

  delete(path: string): void {
    this.versions.delete(path);
  }

  /** Every visible version, in path order. */
  values(): IterableIterator<FlightVersion> {
    return this.versions.values();
  }

  /** How many paths hold a visible version. */
  get size(): number {
    return this.versions.size;
  }

  /** The versions at a normalised prefix and under it (whole segments), in path order. */
  *range(prefix: string): IterableIterator<FlightVersion> {
    if (prefix === '') {
      yield* this.versions.values();
      return;
    }
    const exact = this.versions.get(prefix);
    if (exact) yield exact;
    // Every path under `prefix/` sorts from `prefix/` up to `prefix0` ('0' follows '/').
    const end = `${prefix}0`;
    for (const [path, version] of this.versions.entries(`${prefix}/`)) {
      if (path >= end) return;
      yield version;
    }
  }

  /**
   * Up to `max` versions at or under a normalised prefix (whole segments) whose paths sort
   * after `after` (from the first when undefined), in path order: a listing a page at a
   * time, so it never holds the whole range and survives changes between pages.
   */
  page(prefix: string, after: string | undefined, max: number): FlightVersion[] {
    const out: FlightVersion[] = [];
    if (after === undefined && prefix !== '') {
      const exact = this.versions.get(prefix);
      if (exact) out.push(exact);
    }
    const low = prefix === '' ? '' : `${prefix}/`;
    const end = prefix === '' ? undefined : `${prefix}0`;
    for (const [path, version] of this.versions.entries(after !== undefined && after >= low ? after : low)) {
      if (out.length >= max || (end !== undefined && path >= end)) break;
      if (path !== after) out.push(version);
    }
    return out;
  }
}
