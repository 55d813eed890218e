import type { StorageTypeName, TierConfig } from '../config/schema.js';
import { formatSize } from '../config/units.js';
import { readFlightObjectMessages } from '../durability/flight-object.js';
import { CancelledError, NotFoundError, ResourceExhaustedError, UnavailableError } from '../errors.js';
import type { Logger } from '../core/log.js';
import { kindOf } from '../durable/durable-store.js';
import type { Charge, Ledger } from './ledger.js';
import { TierCopy } from './tier-copy.js';
import { overMax } from './spill-leeway.js';
import type { PlacementEvents } from './events.js';
import type { Catalog } from './catalog.js';
import type { Background } from '../core/background.js';
import type { Clock } from '../core/clock.js';
import type { FlightVersion, Placed, RemovalReason } from './flight.js';
import type { Frame } from './storage-type.js';

/** How a relocation ended; see TierMover.relocate. */
export type RelocateOutcome = 'done' | 'skipped' | 'no-room' | 'error';

/** A copy that could not move down when due (pinned, being copied, no room below) is looked at again this much later. */
const MOVE_RETRY_MS = 5_000;

/** What the tier mover is built on. */
export interface MoverParts {
  ledger: Ledger;
  /** Where evicted flights leave, or keep only their durable copy. */
  catalog: Catalog;
  events: PlacementEvents;
  clock: Clock;
  log: Logger;
  /** Where promotions and due moves run. */
  background: Background;
}

/**
 * Where flights go when room is needed or they cool down or heat up: reservations with
 * eviction (priority, then LRU, across classes; evictionSpill to the next tier), moves,
 * promotions and restores from the durable store. A copy to another tier is written while
 * the old one stays pinned and readable; only then are readers switched to it.
 */
export class TierMover {
  /** Evictions that copy a flight to the next tier; a reservation may wait for them. */
  private readonly leaving = new Map<StorageTypeName, Set<Promise<unknown>>>();

  private readonly ledger: Ledger;
  private readonly catalog: Catalog;
  private readonly events: PlacementEvents;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly background: Background;

  constructor(parts: MoverParts) {
    this.ledger = parts.ledger;
    this.catalog = parts.catalog;
    this.events = parts.events;
    this.clock = parts.clock;
    this.log = parts.log;
    this.background = parts.background;
  }

  /**
   * Starts moving down every copy whose tier's `moveAfter` has passed since it was last
   * read, and every copy over its tier's maxFlightSize (a put that ended within the spill
   * leeway: the rest of its spill). The ledger keeps them by deadline: only those due are
   * looked at. One that cannot move now is looked at again later.
   */
  moveDue(): void {
    const now = this.clock.now();
    for (const placed of this.ledger.dueMoves(now)) {
      const version = placed.version;
      if (version.relocating || version.pinned) {
        this.ledger.retryMove(placed, now + MOVE_RETRY_MS);
        continue;
      }
      const reason = overMax(version.cls.config.tiers, placed.tierIndex, placed.bytes) ? 'spill' : 'move';
      const move = this.relocate(version, placed.tierIndex + 1, reason).then((outcome) => {
        if (outcome === 'no-room' || outcome === 'error')
          this.ledger.retryMove(placed, this.clock.now() + MOVE_RETRY_MS);
      });
      this.background.run(move);
    }
  }

  /**
   * Charges bytes, evicting lower-priority then least-recently-used copies of the storage
   * type until they fit. Copies being read are skipped: their bytes could not be freed now.
   */
  async chargeBytes(charge: Charge, bytes: number, forPath: string, waitForSpills = true): Promise<void> {
    const storage = charge.storage;
    const kept = new Set<Placed>();
    for (;;) {
      if (this.ledger.tryCharge(charge, bytes)) return;
      const victim = bytes <= storage.capacity ? this.pickVictim(storage.name, kept) : undefined;
      if (victim) {
        // A victim whose spill failed stays readable where it is; this reservation looks further.
        if (!(await this.evict(victim))) kept.add(victim);
        continue;
      }
      const leaving = this.leaving.get(storage.name);
      if (waitForSpills && leaving && leaving.size > 0) {
        await Promise.race(leaving);
        continue;
      }
      throw new ResourceExhaustedError(
        `flight "${forPath}": ${storage.name} is full: ${formatSize(bytes)} more do not fit in ${formatSize(storage.capacity)} ` +
          `(${formatSize(storage.used)} used, the rest held by readers and uploads in progress)`,
      );
    }
  }

  private pickVictim(storage: StorageTypeName, kept: ReadonlySet<Placed>): Placed | undefined {
    for (const placed of this.ledger.candidates(storage)) {
      if (kept.has(placed)) continue;
      if (placed.pins > 0) continue;
      // A copy kept only for a replaced version's tickets goes first (it is first in the order),
      // then clean copies (their flights have a current copy elsewhere), unless a relocation
      // may be taking that clean copy up as the flight's current one.
      if (placed.graceUntil !== undefined) return placed;
      if (placed.clean) {
        if (!placed.version.relocating) return placed;
        continue;
      }
      // Pinned flights stay; so does a weak flight whose durable copy is not written yet (the only copy).
      const version = placed.version;
      if (!version.pinned && !version.relocating && version.durable?.state !== 'pending') return placed;
    }
    return undefined;
  }

  /**
   * Evicts one copy: to the class's next tier when its tier says evictionSpill, else
   * dropped. Returns false when the copy stays: its spill failed with an error (not for
   * lack of room) and it has no durable copy to fall back on, so dropping it would lose an
   * acknowledged flight.
   */
  async evict(placed: Placed): Promise<boolean> {
    const version = placed.version;
    if (placed.clean) {
      // Nothing is lost: the flight's current copy is in a tier above.
      this.log.debug(
        { path: version.path, storage: placed.storage },
        "dropping a promoted flight's clean copy for room",
      );
      this.catalog.dropClean(version);
      return true;
    }
    if (placed.graceUntil !== undefined) {
      // Room is needed: the old version's tickets answer "was replaced" from now on.
      this.log.debug({ path: version.path, tag: version.tag }, "ending a replaced version's ticket grace for room");
      this.catalog.endGrace(version);
      return true;
    }
    const tiers = version.cls.config.tiers;
    const tier = tiers[placed.tierIndex] as TierConfig;
    if (tier.evictionSpill && placed.tierIndex + 1 < tiers.length) {
      let leaving = this.leaving.get(placed.storage);
      if (!leaving) {
        leaving = new Set();
        this.leaving.set(placed.storage, leaving);
      }
      const move = this.relocate(version, placed.tierIndex + 1, 'evict');
      leaving.add(move);
      let outcome: RelocateOutcome;
      try {
        outcome = await move;
      } finally {
        leaving.delete(move);
      }
      if (outcome === 'done' || version.placed !== placed || version.retired) return true;
      // The copy failed with an error: keep the only copy, unless the durable one serves.
      if (outcome === 'error' && version.durable?.state !== 'stored') return false;
      // The next tier has no room: the room is needed here, so the flight is dropped.
    }
    this.events.emit({ type: 'evict', version, storage: placed.storage, tier: placed.tierIndex, outcome: 'dropped' });
    if (version.durable?.state === 'stored') {
      // The durable copy remains: the flight stays visible and is restored on next read.
      this.catalog.dropTierCopy(version);
      return true;
    }
    this.catalog.retire(version, 'evict');
    return true;
  }

  /** Copies a durable-only version back into the first tier of its class that takes it. */
  async restore(version: FlightVersion): Promise<void> {
    const object = version.durable?.object;
    const store = version.durable?.store;
    if (!object || !store) throw new NotFoundError(`flight "${version.path}" has no copy left`);
    let lastError: unknown;
    for (let tier = 0; tier < version.cls.config.tiers.length; tier++) {
      try {
        const started = performance.now();
        const placed = await this.copyTo(version, tier, readFlightObjectMessages(store, object, version.allMessages()));
        if (placed) {
          const seconds = (performance.now() - started) / 1000;
          this.events.emit({ type: 'restore', version, storage: placed.storage, tier, bytes: object.size, seconds });
          this.log.debug({ path: version.path, storage: placed.storage, tier, reason: 'restore' }, 'flight restored');
        }
        return;
      } catch (err) {
        lastError = err;
        if (!(err instanceof ResourceExhaustedError)) {
          this.events.emit({ type: 'durable-failure', cls: version.cls, operation: 'restore', kind: kindOf(err) });
          this.failed(version, 'restore', 'error', tier, err);
          break;
        }
      }
    }
    if (lastError instanceof ResourceExhaustedError) this.failed(version, 'restore', 'no-room', undefined, lastError);
    this.catalog.dropTierCopy(version);
    if (lastError instanceof ResourceExhaustedError) throw lastError;
    throw new UnavailableError(
      `flight "${version.path}": restoring from the durable store failed: ${(lastError as Error)?.message}`,
    );
  }

  /**
   * Copies a version to another tier of its class and switches readers to the copy. The
   * old copy stays pinned (readable) throughout and is freed when its last reader is done.
   * When the copy cannot be made the version stays where it was: 'no-room' when the tier
   * could not take it, 'error' when writing or reading failed (logged and counted).
   */
  async relocate(
    version: FlightVersion,
    toTier: number,
    reason: 'evict' | 'move' | 'promote' | 'spill',
  ): Promise<RelocateOutcome> {
    const from = version.placed;
    if (!from || !version.cls.config.tiers[toTier] || version.relocating || version.retired) return 'skipped';
    version.relocating = true;
    this.ledger.pin(from);
    const work = this.relocateFrom(version, from, toTier, reason);
    // A weak upload waits for a move down, so that it reads the copy the flight ends up in.
    if (toTier > from.tierIndex) version.settling = work;
    try {
      return await work;
    } finally {
      if (version.settling === work) version.settling = undefined;
      version.relocating = false;
      this.ledger.unpin(from);
    }
  }

  private async relocateFrom(
    version: FlightVersion,
    from: Placed,
    toTier: number,
    reason: 'evict' | 'move' | 'promote' | 'spill',
  ): Promise<RelocateOutcome> {
    try {
      const removal = reason === 'spill' ? 'move' : reason;
      const placed =
        (await this.takeClean(version, toTier, from, removal)) ??
        (await this.copyTo(version, toTier, from.placement.read(version.allMessages()), from, removal));
      if (!placed) return 'skipped';
      this.events.emit(
        reason === 'evict'
          ? { type: 'evict', version, storage: from.storage, tier: from.tierIndex, outcome: 'spilled' }
          : reason === 'spill'
            ? { type: 'spill', cls: version.cls, from: from.storage, to: placed.storage }
            : { type: reason, version, from: from.storage, to: placed.storage },
      );
      this.log.debug(
        { path: version.path, from: from.storage, to: placed.storage, bytes: placed.bytes, reason },
        'flight relocated',
      );
      return 'done';
    } catch (err) {
      if (err instanceof CancelledError) return 'skipped'; // deleted or replaced meanwhile
      const cause = err instanceof ResourceExhaustedError ? 'no-room' : 'error';
      this.failed(version, reason, cause, toTier, err);
      return cause;
    }
  }

  /**
   * Moving a flight down to the tier where its clean copy is (a promotion left it there):
   * that copy becomes current again and `from` is retired, nothing is written. Undefined
   * when there is no such copy (or its file is gone: it is dropped, and the flight copied).
   */
  private async takeClean(
    version: FlightVersion,
    toTier: number,
    from: Placed,
    reason: 'evict' | 'move' | 'promote',
  ): Promise<Placed | undefined> {
    const clean = version.clean;
    if (!clean || reason === 'promote' || clean.tierIndex !== toTier) return undefined;
    const intact = (await clean.placement.intact?.()) ?? true;
    // Checked again after the wait: deleted, replaced or dropped meanwhile.
    if (version.retired || version.placed !== from || version.clean !== clean || clean.retired) return undefined;
    version.clean = undefined;
    if (!intact) {
      this.ledger.retire(clean, 'evict');
      return undefined;
    }
    this.ledger.reviveClean(clean);
    this.catalog.setCopy(version, clean);
    this.ledger.retire(from, reason);
    version.accesses = undefined;
    return clean;
  }

  /**
   * Writes a version's messages into a tier of its class and makes that copy current.
   * Returns undefined when the version was retired meanwhile (the copy is then dropped);
   * throws, leaving nothing charged, when the tier cannot take it.
   */
  private async copyTo(
    version: FlightVersion,
    toTier: number,
    frames: AsyncIterable<Frame>,
    /** The copy this one replaces (a relocation): retired in the same step the new one becomes current. */
    from?: Placed,
    reason: RemovalReason = 'move',
  ): Promise<Placed | undefined> {
    const tier = version.cls.config.tiers[toTier] as TierConfig;
    // A copy never waits for other evictions to finish, so two of them cannot wait on each other.
    const copy = new TierCopy(this.ledger, tier, (charge, bytes) =>
      this.chargeBytes(charge, bytes, version.path, false),
    );
    const room = async (bytes: number): Promise<void> => {
      const reason = copy.tooBig(bytes);
      if (reason !== undefined) throw new ResourceExhaustedError(`flight "${version.path}", tier ${toTier}: ${reason}`);
      await copy.room(bytes);
    };
    try {
      await room(copy.writer.schemaSize(version.schemaHeader));
      await copy.writer.writeSchema(version.schemaHeader);
      for await (const frame of frames) {
        if (version.retired) throw new CancelledError(`flight "${version.path}" was removed while being copied`);
        await room(copy.writer.sizeOf(frame));
        await copy.writer.append(frame);
      }
      await room(copy.writer.trailerSize());
      const placement = await copy.finish();
      if (version.retired) {
        // Deleted or replaced meanwhile: the copy is not needed.
        await copy.discard(placement);
        return undefined;
      }
      const placed = this.ledger.place(version, placement, toTier);
      this.catalog.setCopy(version, placed);
      if (from && this.ledger.isCurrent(from) && reason === 'promote' && from.tierIndex === toTier + 1) {
        // The copy it leaves stays, clean: moving the flight back down later costs no write.
        // One clean copy per flight, the nearest.
        this.catalog.dropClean(version);
        this.ledger.keepClean(from);
        version.clean = from;
      } else if (from) this.ledger.retire(from, reason);
      version.accesses = undefined;
      return placed;
    } catch (err) {
      await copy.abort();
      throw err;
    }
  }

  /** A relocation that did not happen: counted, and logged (a warning unless the tier was just full). */
  private failed(
    version: FlightVersion,
    operation: 'evict' | 'move' | 'promote' | 'spill' | 'restore',
    cause: 'no-room' | 'error',
    toTier: number | undefined,
    err: unknown,
  ): void {
    this.events.emit({ type: 'relocation-failed', version, operation, cause });
    const fields = { path: version.path, operation, toTier, from: version.storage, err: (err as Error)?.message };
    if (cause === 'no-room') this.log.debug(fields, 'relocation not done: the tier has no room');
    else this.log.warn(fields, 'relocation failed; the flight stays where it was');
  }

  /** Records a read; enough reads within the window move the flight one tier up. */
  considerPromotion(version: FlightVersion, now: number): void {
    const placed = version.placed as Placed;
    const rule = version.cls.config.tiers[placed.tierIndex]?.promoteAfter;
    if (!rule || placed.tierIndex === 0) return;
    const accesses = (version.accesses ??= []);
    accesses.push(now);
    if (accesses.length > rule.accesses) accesses.shift();
    const first = accesses[0] as number;
    if (accesses.length >= rule.accesses && now - first <= rule.within && !version.relocating) {
      this.background.run(this.relocate(version, placed.tierIndex - 1, 'promote'));
    }
  }
}
