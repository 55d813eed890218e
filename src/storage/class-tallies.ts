import type { FlightVersion } from './flight.js';

/** A class's share of the stats: its visible flights, and what their durable copies hold. */
export interface ClassTally {
  flights: number;
  pinned: number;
  /** Bytes of its visible flights' durable objects. */
  durableBytes: number;
  /** Of those, the bytes of flights with no tier copy. */
  durableOnlyBytes: number;
}

/** A version's durable bytes as stats count them: its object's size, or its listed size until read. */
export function durableSize(version: FlightVersion): number {
  return version.durable?.object?.size ?? version.durable?.listed?.size ?? 0;
}

/**
 * Per class, what stats report of its visible flights, kept as they change (the catalog
 * counts each visible version in and out), so a stats snapshot costs the number of classes.
 */
export class ClassTallies {
  private readonly byClass = new Map<string, ClassTally>();

  /** A class's tally (zero until a flight of it is counted). */
  of(className: string): ClassTally {
    let tally = this.byClass.get(className);
    if (!tally) this.byClass.set(className, (tally = { flights: 0, pinned: 0, durableBytes: 0, durableOnlyBytes: 0 }));
    return tally;
  }

  /** Counts a visible version in (+1) or out (-1) of its class's tally. */
  count(version: FlightVersion, sign: 1 | -1, className = version.cls.config.name): void {
    const tally = this.of(className);
    tally.flights += sign;
    if (version.pinned) tally.pinned += sign;
    tally.durableBytes += sign * version.countedDurable;
    if (!version.placed) tally.durableOnlyBytes += sign * version.countedDurable;
  }

  /** Pinned flights in every class. */
  get pinned(): number {
    let n = 0;
    for (const tally of this.byClass.values()) n += tally.pinned;
    return n;
  }
}
