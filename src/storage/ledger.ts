import type { StorageTypeName, TierConfig } from '../config/schema.js';
import { InvalidArgumentError } from '../errors.js';
import type { Logger } from '../core/log.js';
import { EvictionOrder } from './eviction-order.js';
import { Deadlines } from '../core/deadlines.js';
import { overMax } from './spill-leeway.js';
import { Placed, type FlightVersion, type RemovalReason } from './flight.js';
import type { Frame, Placement, StorageType, StreamFile } from './storage-type.js';

/** A version's current copy, pinned while it is read (weak uploads, the spool). */
export interface CurrentCopy {
  frames: AsyncIterable<Frame>;
  /** Its file, when the copy is one a durable object can start as it is. */
  streamFile?: StreamFile | undefined;
  /** Unpins the copy. */
  done: () => void;
}

/** A storage type's share of the stats (see Ledger `byType`). */
export interface TypeTally {
  /** Current copies: visible flights whose copy is here. */
  flights: number;
  /** Bytes of retired copies still being read. */
  pinnedRetired: number;
  /** Bytes of replaced versions' copies kept for their tickets. */
  ticketGrace: number;
  /** Bytes of clean copies (Placed.clean). */
  clean: number;
}

/** A class's current copies in one of its tiers. */
export interface TierTally {
  flights: number;
  bytes: number;
}

/** Below every tier's priority: copies kept only for tickets are evicted first. */
const GRACE_PRIORITY = Number.NEGATIVE_INFINITY;
/** Clean copies next: after ticket copies, before any current copy. */
const CLEAN_PRIORITY = -Number.MAX_VALUE;

/** Bytes charged to a storage type by a writer that has not finished; the ledger sums them. */
export interface Charge {
  storage: StorageType;
  bytes: number;
}

/**
 * Where every byte of every storage type is: copies placed in a tier (current ones, and
 * retired ones still pinned by readers) and charges of writers in progress, plus each
 * storage type's eviction order. Charging, placing, pinning and freeing copies happens
 * here and nowhere else (a storage type's byte budget is changed only from here), so the
 * accounting invariant (`check`) has one owner.
 */
export class Ledger {
  private readonly order = new Map<StorageTypeName, EvictionOrder>();
  /** Every copy whose bytes are still charged: current ones and retired ones being read. */
  private readonly resident = new Set<Placed>();
  /** Charges of writers that have not finished (puts, spills, moves). */
  private readonly charges = new Set<Charge>();
  /** Copies by when their tier's `moveAfter` may move them down: housekeeping pops what is due. */
  private readonly moves = new Deadlines<Placed>();
  /**
   * What stats report, kept as copies change state rather than counted on each call: per
   * storage type, its current copies and the bytes of copies kept only for tickets or
   * readers; per class, its current copies and their bytes in each tier.
   */
  private readonly byType = new Map<StorageTypeName, TypeTally>();
  private readonly byClass = new Map<string, TierTally[]>();

  constructor(
    readonly types: ReadonlyMap<StorageTypeName, StorageType>,
    private readonly log: Logger,
  ) {
    for (const name of types.keys()) {
      this.order.set(name, new EvictionOrder());
      this.byType.set(name, { flights: 0, pinnedRetired: 0, ticketGrace: 0, clean: 0 });
    }
  }

  /** A storage type's tally (see `byType`). */
  typeTally(name: StorageTypeName): Readonly<TypeTally> {
    return this.byType.get(name) ?? { flights: 0, pinnedRetired: 0, ticketGrace: 0, clean: 0 };
  }

  /** A class's current copies and their bytes, by tier index (see `byClass`). */
  tierTally(className: string): readonly Readonly<TierTally>[] {
    return this.byClass.get(className) ?? [];
  }

  /** A copy becomes current (+1) or stops being current (-1), in its version's class and tier. */
  private countCurrent(placed: Placed, sign: 1 | -1, className = placed.version.cls.config.name): void {
    const type = this.byType.get(placed.storage);
    if (type) type.flights += sign;
    let tiers = this.byClass.get(className);
    if (!tiers) this.byClass.set(className, (tiers = []));
    while (tiers.length <= placed.tierIndex) tiers.push({ flights: 0, bytes: 0 });
    const tier = tiers[placed.tierIndex] as TierTally;
    tier.flights += sign;
    tier.bytes += sign * placed.bytes;
  }

  storageType(tier: TierConfig): StorageType {
    const type = this.types.get(tier.storage);
    if (!type) throw new InvalidArgumentError(`storage type ${tier.storage} is not configured`);
    return type;
  }

  /** Eviction candidates of a storage type: lowest priority, least recently used first. */
  candidates(storage: StorageTypeName): Iterable<Placed> {
    return this.order.get(storage)?.candidates() ?? [];
  }

  openCharge(storage: StorageType): Charge {
    const charge = { storage, bytes: 0 };
    this.charges.add(charge);
    return charge;
  }

  /** Ends a charge; whatever it still holds now belongs to a placement. */
  closeCharge(charge: Charge): void {
    charge.bytes = 0;
    this.charges.delete(charge);
  }

  /** Adds `bytes` to a charge if its storage type has room for them now; whether it had. */
  tryCharge(charge: Charge, bytes: number): boolean {
    if (!charge.storage.tryCharge(bytes)) return false;
    charge.bytes += bytes;
    return true;
  }

  unchargeBytes(charge: Charge, bytes: number): void {
    if (bytes === 0) return;
    if (bytes < 0 || bytes > charge.bytes) throw new Error(`releasing ${bytes} of a ${charge.bytes}-byte charge`);
    charge.bytes -= bytes;
    charge.storage.uncharge(bytes);
  }

  /** Returns whatever a failed writer's charge still holds and forgets it (idempotent). */
  abandonCharge(charge: Charge): void {
    if (!this.charges.has(charge)) return;
    this.unchargeBytes(charge, charge.bytes);
    this.charges.delete(charge);
  }

  /**
   * Frees a finished copy that was never placed (its flight was removed while it was
   * written): its bytes, which its closed charge handed over to it, go back.
   */
  async discard(placement: Placement): Promise<void> {
    this.storageTypeNamed(placement.storage).uncharge(placement.bytes);
    await placement.destroy();
  }

  /** Pins a version's current copy and streams all its messages (weak uploads, the spool); `done` unpins. */
  readCurrent(version: FlightVersion): CurrentCopy | undefined {
    const placed = version.placed;
    if (!placed) return undefined;
    this.pin(placed);
    return {
      frames: placed.placement.read(version.allMessages()),
      streamFile: placed.placement.streamFile,
      done: () => this.unpin(placed),
    };
  }

  private storageTypeNamed(name: StorageTypeName): StorageType {
    const type = this.types.get(name);
    if (!type) throw new Error(`storage type ${name} is not configured`);
    return type;
  }

  /** Records a finished copy (its bytes already charged) as resident in a tier. */
  place(version: FlightVersion, placement: Placement, tierIndex: number): Placed {
    const placed = new Placed(version, tierIndex, placement);
    this.resident.add(placed);
    this.countCurrent(placed, 1);
    const tier = version.cls.config.tiers[tierIndex] as TierConfig;
    this.order.get(placed.storage)?.add(placed, tier.priority);
    this.scheduleMove(placed);
    return placed;
  }

  /**
   * When the copy's tier moves it down (`moveAfter` after the last read), if it does; now,
   * if the copy holds more than its tier's maxFlightSize (a put that ended within the spill
   * leeway).
   */
  private scheduleMove(placed: Placed, at?: number): void {
    const tiers = placed.version.cls.config.tiers;
    if (overMax(tiers, placed.tierIndex, placed.bytes)) {
      this.moves.schedule(placed, at ?? 0);
      return;
    }
    const moveAfter = tiers[placed.tierIndex]?.moveAfter;
    if (moveAfter === undefined || placed.tierIndex + 1 >= tiers.length) return;
    this.moves.schedule(placed, at ?? placed.version.lastAccess + moveAfter);
  }

  /**
   * Current copies whose tier's `moveAfter` has passed since their flight was last read,
   * and those over their tier's maxFlightSize. A copy read since it was scheduled is
   * scheduled again for its new time, not returned.
   */
  *dueMoves(now: number): Generator<Placed> {
    for (const placed of this.moves.due(now)) {
      if (placed.retired || placed.version.placed !== placed) continue;
      if (overMax(placed.version.cls.config.tiers, placed.tierIndex, placed.bytes)) {
        yield placed;
        continue;
      }
      const moveAfter = placed.version.cls.config.tiers[placed.tierIndex]?.moveAfter;
      if (moveAfter === undefined) continue;
      const due = placed.version.lastAccess + moveAfter;
      if (due > now) this.moves.schedule(placed, due);
      else yield placed;
    }
    this.moves.compact(this.resident.size, (p) => !p.retired && p.version.placed === p);
  }

  /** Looks at a copy's move again at `at` (it could not move now: pinned, busy, or no room). */
  retryMove(placed: Placed, at: number): void {
    this.scheduleMove(placed, at);
  }

  /** After a reload (tiers and their moveAfter may have changed): every current copy scheduled again. */
  rescheduleMoves(): void {
    this.moves.clear();
    for (const placed of this.resident)
      if (!placed.retired && placed.version.placed === placed) this.scheduleMove(placed);
  }

  /** Marks a copy as just read (eviction order). */
  touch(placed: Placed): void {
    this.order.get(placed.storage)?.touch(placed);
  }

  /**
   * Gives a copy a new tier index and priority: its class was reloaded (its version's
   * class is the new one already; `previousClass` names the one it was counted in).
   */
  reorder(placed: Placed, tierIndex: number, priority: number, previousClass: string): void {
    const current = this.isCurrent(placed);
    if (current) this.countCurrent(placed, -1, previousClass);
    const order = this.order.get(placed.storage);
    order?.remove(placed);
    placed.tierIndex = tierIndex;
    order?.add(placed, priority);
    if (current) this.countCurrent(placed, 1);
  }

  /** Whether a copy is its visible version's copy: not retired, kept only for tickets, or clean. */
  isCurrent(placed: Placed): boolean {
    return !placed.retired && placed.graceUntil === undefined && !placed.clean;
  }

  /**
   * A current copy that a promotion replaced stays as its version's clean copy: charged as
   * before, no longer current, and early in its storage type's eviction order.
   */
  keepClean(placed: Placed): void {
    if (!this.isCurrent(placed)) throw new Error('only a current copy can be kept clean');
    this.countCurrent(placed, -1);
    placed.clean = true;
    const type = this.byType.get(placed.storage);
    if (type) type.clean += placed.bytes;
    this.order.get(placed.storage)?.add(placed, CLEAN_PRIORITY);
  }

  /** A clean copy becomes its version's current copy again (the caller retires the one it replaces). */
  reviveClean(placed: Placed): void {
    if (!placed.clean || placed.retired) throw new Error('only a clean copy can be revived');
    placed.clean = false;
    const type = this.byType.get(placed.storage);
    if (type) type.clean -= placed.bytes;
    this.countCurrent(placed, 1);
    const tier = placed.version.cls.config.tiers[placed.tierIndex] as TierConfig;
    this.order.get(placed.storage)?.add(placed, tier.priority);
    this.scheduleMove(placed);
  }

  pin(placed: Placed): void {
    placed.pins++;
  }

  unpin(placed: Placed): void {
    placed.pins--;
    if (placed.pins === 0 && placed.retired) {
      const type = this.byType.get(placed.storage);
      if (type && this.resident.has(placed)) type.pinnedRetired -= placed.bytes;
      this.free(placed);
    }
  }

  /**
   * Keeps the copy of a replaced version for the tickets issued for it, until `until`:
   * charged as before, and first in its storage type's eviction order, so it never costs a
   * visible flight its place.
   */
  grace(placed: Placed, until: number): void {
    if (this.isCurrent(placed)) {
      this.countCurrent(placed, -1);
      const type = this.byType.get(placed.storage);
      if (type) type.ticketGrace += placed.bytes;
    }
    placed.graceUntil = until;
    const order = this.order.get(placed.storage);
    order?.remove(placed);
    order?.add(placed, GRACE_PRIORITY);
  }

  /** Takes a copy out of service: freed now, or when its last reader unpins it. */
  retire(placed: Placed, reason: RemovalReason): void {
    if (placed.retired) return;
    const type = this.byType.get(placed.storage);
    if (placed.clean) {
      placed.clean = false;
      if (type) type.clean -= placed.bytes;
    } else if (placed.graceUntil === undefined) this.countCurrent(placed, -1);
    else if (type) type.ticketGrace -= placed.bytes;
    placed.retired = reason;
    this.order.get(placed.storage)?.remove(placed);
    if (placed.pins === 0) this.free(placed);
    else if (type) type.pinnedRetired += placed.bytes;
  }

  private free(placed: Placed): void {
    if (!this.resident.delete(placed)) return;
    this.types.get(placed.storage)?.uncharge(placed.bytes);
    placed.placement.destroy().catch((err: unknown) => {
      this.log.warn({ storage: placed.storage, err: (err as Error).message }, 'could not remove a flight file');
    });
  }

  /** Copies still charged (current and retired-but-read) and open charges, for stats. */
  get residentCopies(): ReadonlySet<Placed> {
    return this.resident;
  }

  get openCharges(): ReadonlySet<Charge> {
    return this.charges;
  }

  /**
   * The accounting invariant, for tests: every storage type's used bytes equal what its
   * copies (current, or retired but still read) and unfinished writers hold, within capacity.
   */
  check(current: Iterable<FlightVersion>): void {
    checkAccounting(this.types, this.resident, this.charges, current);
  }
}

/**
 * The accounting invariant, for tests: every storage type's used bytes equal what its
 * copies (current, or retired but still read) and unfinished writers hold, within
 * capacity; every visible flight has a copy somewhere.
 */
function checkAccounting(
  types: ReadonlyMap<StorageTypeName, StorageType>,
  resident: Iterable<Placed>,
  charges: Iterable<Charge>,
  versions: Iterable<FlightVersion>,
): void {
  const residentSet = new Set(resident);
  for (const [name, type] of types) {
    let expected = 0;
    for (const p of residentSet) if (p.storage === name) expected += p.bytes;
    for (const c of charges) if (c.storage === type) expected += c.bytes;
    if (type.used !== expected) throw new Error(`${name}: used ${type.used} != held ${expected}`);
    if (type.used > type.capacity) throw new Error(`${name}: used ${type.used} > capacity ${type.capacity}`);
  }
  for (const v of versions) {
    if (v.placed ? !residentSet.has(v.placed) : v.durable?.state !== 'stored') {
      throw new Error(`flight "${v.path}" has no copy`);
    }
  }
}
