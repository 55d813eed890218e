import { inSpan } from '../core/trace.js';
import type { FlightPath } from '../core/path.js';
import type { Clock } from '../core/clock.js';
import { relativeSegments } from '../routing/router.js';
import type { Logger } from '../core/log.js';
import type { BufferPool } from '../core/buffer-pool.js';
import { readFlightObjectMessages } from '../durability/flight-object.js';
import type { Catalog } from './catalog.js';
import type { PlacementEvents } from './events.js';
import type { DurableCopy, FlightVersion } from './flight.js';
import type { Ledger } from './ledger.js';
import type { Frame } from './storage-type.js';
import type { TierMover } from './tier-mover.js';

/** A pinned copy handed to a reader; `release` exactly once when done. */
export interface FlightLease {
  readonly version: FlightVersion;
  /** The messages at the given indices, ready to send (see Placement.read for `pool`). */
  read(indices: readonly number[], pool?: BufferPool): AsyncIterable<Frame>;
  release(): void;
}

/** What handing out leases is built on. */
export interface LeaseParts {
  ledger: Ledger;
  /** Where versions are looked up (and their manifests read) and vanished copies dropped. */
  catalog: Catalog;
  /** Restores and promotions. */
  mover: TierMover;
  events: PlacementEvents;
  clock: Clock;
  log: Logger;
}

/**
 * Read leases: a reader pins the copy it reads, so eviction, a move or a replace never
 * frees it underneath; a flight whose only copy is durable is restored first (concurrent
 * readers share one restore) or, when no tier can take it, read from its store.
 */
export class Leases {
  private readonly ledger: Ledger;
  private readonly catalog: Catalog;
  private readonly mover: TierMover;
  private readonly events: PlacementEvents;
  private readonly clock: Clock;
  private readonly log: Logger;

  constructor(parts: LeaseParts) {
    this.ledger = parts.ledger;
    this.catalog = parts.catalog;
    this.mover = parts.mover;
    this.events = parts.events;
    this.clock = parts.clock;
    this.log = parts.log;
  }

  /** Pins the current copy of the flight at a normalised path for reading. NOT_FOUND when absent or expired. */
  async open(path: FlightPath, tag?: string): Promise<FlightLease> {
    await this.catalog.manifests.readPath(path);
    let version = this.catalog.find(path, tag);
    while (!version.placed) {
      const object = version.durable?.object;
      if (object && !this.fitsSomeTier(version, object.size)) return this.serveFromStore(version);
      // A full `reject` limit on tier copies: read it from the store rather than restore it.
      if (
        object &&
        !version.restoring &&
        !this.catalog.limits.admitTierCopy(version, relativeSegments(version.cls, version.path))
      ) {
        return this.serveFromStore(version);
      }
      version.restoring ??= inSpan('restore', { 'tierflight.path': version.path }, () =>
        this.mover.restore(version),
      ).finally(() => (version.restoring = undefined));
      await version.restoring;
      version = this.catalog.find(path, tag);
    }
    if (!(await this.intact(version))) return this.open(path, tag);
    // The awaits above let anything happen: a replace, delete or eviction may have retired
    // the version (its copy freed, or to be freed), or a move switched it to another copy.
    // Pin only a live copy of a live version, in this same synchronous step; else look again.
    const placed = version.placed;
    if (!placed || placed.retired || (version.retired && placed.graceUntil === undefined)) return this.open(path, tag);
    this.ledger.pin(placed);
    const now = this.clock.now();
    version.lastAccess = now;
    this.catalog.limits.touch(version);
    this.ledger.touch(placed);
    this.events.emit({ type: 'hit', version, storage: placed.storage, tier: placed.tierIndex });
    this.mover.considerPromotion(version, now);
    let released = false;
    return {
      version,
      read: (indices, pool) => placed.placement.read(indices, pool),
      release: () => {
        if (released) return;
        released = true;
        this.ledger.unpin(placed);
      },
    };
  }

  /**
   * Whether the current tier copy is still there. One that vanished (its file deleted
   * behind the server's back) is dropped with an error log: the flight then lives on in its
   * durable copy, if it has one, and is gone from the catalog otherwise.
   */
  private async intact(version: FlightVersion): Promise<boolean> {
    const placed = version.placed;
    if (!placed?.placement.intact || (await placed.placement.intact())) return true;
    if (version.placed !== placed) return false; // changed meanwhile: look again
    if (version.retired) {
      // A replaced version kept for its tickets: without its copy, the grace is over.
      if (placed.graceUntil !== undefined) this.catalog.endGrace(version);
      return false;
    }
    const durable = version.durable?.state === 'stored';
    this.log.error(
      { path: version.path, storage: placed.storage, durable },
      durable
        ? 'a tier copy vanished from under the server; serving the flight from its durable copy'
        : 'a tier copy vanished from under the server and there is no durable copy; the flight is lost',
    );
    if (durable) this.catalog.dropTierCopy(version);
    else this.catalog.retire(version, 'evict');
    return false;
  }

  /** A flight larger than every tier of its class is read straight from its durable object. */
  private serveFromStore(version: FlightVersion): FlightLease {
    const { store, object } = version.durable as Required<DurableCopy>;
    version.lastAccess = this.clock.now();
    this.catalog.limits.touch(version);
    this.events.emit({ type: 'hit', version, storage: 'durable', tier: -1 });
    return {
      version,
      read: (indices) => readFlightObjectMessages(store, object, indices),
      release: () => undefined,
    };
  }

  /** Whether a flight of `bytes` could be placed in some tier of its class (sizes, not room). */
  private fitsSomeTier(version: FlightVersion, bytes: number): boolean {
    return version.cls.config.tiers.some(
      (t) =>
        (t.maxFlightSize === undefined || bytes <= t.maxFlightSize) && bytes <= this.ledger.storageType(t).capacity,
    );
  }
}
