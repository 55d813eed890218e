import type { StorageTypeName } from '../config/schema.js';
import type { RoutedClass } from '../routing/router.js';
import type { FlightVersion } from './flight.js';
import type { Ledger } from './ledger.js';
import type { Catalog } from './catalog.js';
import type { LimitEnforcer } from '../limits/limit-enforcer.js';
import type { DurabilityStats } from '../durability/durability.js';

export interface StorageTypeStats {
  capacity: number;
  used: number;
  /** Visible flights whose current copy is here. */
  flights: number;
  /** Bytes of copies no longer current but still being read. */
  pinnedRetired: number;
  /** Bytes of replaced versions kept for the tickets issued for them (`server.ticketGrace`). */
  ticketGrace: number;
  /** Bytes of clean copies: what promotions left below the copies they made, dropped first. */
  clean: number;
  /** Bytes charged to writers in progress (uploads, spills, moves). */
  reserved: number;
}

export interface TierStats {
  storage: StorageTypeName;
  flights: number;
  bytes: number;
}

export interface ClassStats {
  prefix: string;
  flights: number;
  bytes: number;
  /** Bytes of the class's objects in its durable store (known to this server). */
  durableBytes: number;
  /** Flights whose only copy is the durable one (evicted, or found after a restart). */
  durableOnly: number;
  /** Bytes of those flights' durable objects (`bytes` counts tier copies only). */
  durableOnlyBytes: number;
  /** Flights of the class pinned by an operator. */
  pinned: number;
  tiers: TierStats[];
}

export interface LimitNodeStats {
  policy: string;
  type: 'standard' | 'segmented' | 'hierarchical';
  /** The limited subtree below the class prefix (`/` for a whole class). */
  node: string;
  /** `limit` (the policy's own), `override`, or `default` (a level's default, per subtree). */
  source: string;
  limit: number;
  used: number;
}

export interface ManagerStats {
  storageTypes: Partial<Record<StorageTypeName, StorageTypeStats>>;
  classes: Record<string, ClassStats>;
  flights: number;
  /** Flights pinned by an operator (never evicted or moved down). */
  pinned: number;
  putsInProgress: number;
  /** Every limit node tracked now: configured ones, and subtrees that hold flights. */
  limits: LimitNodeStats[];
  durability: DurabilityStats & {
    /** The durable stores the classes use. */
    stores: string[];
    /** Those whose flights could not be recovered yet (see StorageManager.degradedStores). */
    degraded: string[];
  };
}

/** What a stats snapshot is computed from. */
export interface StatsSources {
  ledger: Ledger;
  classes: readonly RoutedClass[];
  versions: Iterable<FlightVersion>;
  putsInProgress: number;
  limits: LimitEnforcer<FlightVersion>;
  durability: DurabilityStats;
  /** Durable stores not recovered yet. */
  degraded: string[];
}

/** What a stats snapshot is read from: the tallies the ledger and the catalog keep as flights change. */
export interface TallySources {
  ledger: Ledger;
  catalog: Catalog;
  classes: readonly RoutedClass[];
  putsInProgress: number;
  limits: LimitEnforcer<FlightVersion>;
  durability: DurabilityStats;
  /** Durable stores not recovered yet. */
  degraded: string[];
}

/**
 * A stats snapshot from the tallies (Ledger `typeTally`/`tierTally`, Catalog `classTally`):
 * its cost is the number of classes, tiers and limit nodes, not of flights, so metrics can
 * read it at every scrape. `countStats` counts the same from every flight (the check).
 */
export function tallyStats(src: TallySources): ManagerStats {
  const { ledger, catalog, classes } = src;
  const storageTypes: ManagerStats['storageTypes'] = {};
  for (const [name, type] of ledger.types) {
    const tally = ledger.typeTally(name);
    storageTypes[name] = {
      capacity: type.capacity,
      used: type.used,
      flights: tally.flights,
      pinnedRetired: tally.pinnedRetired,
      ticketGrace: tally.ticketGrace,
      clean: tally.clean,
      reserved: 0,
    };
  }
  for (const charge of ledger.openCharges) {
    const t = storageTypes[charge.storage.name];
    if (t) t.reserved += charge.bytes;
  }
  const byClass: ManagerStats['classes'] = {};
  for (const cls of classes) {
    const name = cls.config.name;
    const tally = catalog.classTally(name);
    const tiers = ledger.tierTally(name);
    let placedFlights = 0;
    let bytes = 0;
    for (const tier of tiers) {
      placedFlights += tier.flights;
      bytes += tier.bytes;
    }
    byClass[name] = {
      prefix: cls.prefix,
      flights: tally.flights,
      bytes,
      durableBytes: tally.durableBytes,
      durableOnly: tally.flights - placedFlights,
      durableOnlyBytes: tally.durableOnlyBytes,
      pinned: tally.pinned,
      tiers: cls.config.tiers.map((t, i) => ({
        storage: t.storage,
        flights: tiers[i]?.flights ?? 0,
        bytes: tiers[i]?.bytes ?? 0,
      })),
    };
  }
  return {
    storageTypes,
    classes: byClass,
    flights: catalog.paths.size,
    pinned: catalog.pinnedCount,
    putsInProgress: src.putsInProgress,
    limits: limitStats(src.limits),
    durability: durabilityStats(classes, src.durability, src.degraded),
  };
}

/** The stats snapshot counted from every flight and copy: what the tallies must equal (tests). */
export function countStats(src: StatsSources): ManagerStats {
  const { ledger, classes, putsInProgress } = src;
  const storageTypes: ManagerStats['storageTypes'] = {};
  for (const [name, type] of ledger.types) {
    storageTypes[name] = {
      capacity: type.capacity,
      used: type.used,
      flights: 0,
      pinnedRetired: 0,
      ticketGrace: 0,
      clean: 0,
      reserved: 0,
    };
  }
  const byClass: ManagerStats['classes'] = {};
  for (const cls of classes) {
    byClass[cls.config.name] = {
      prefix: cls.prefix,
      flights: 0,
      bytes: 0,
      durableBytes: 0,
      durableOnly: 0,
      durableOnlyBytes: 0,
      pinned: 0,
      tiers: cls.config.tiers.map((t) => ({ storage: t.storage, flights: 0, bytes: 0 })),
    };
  }
  let flights = 0;
  let pinned = 0;
  for (const version of src.versions) {
    flights++;
    if (version.pinned) pinned++;
    const c0 = byClass[version.cls.config.name];
    const durableSize = version.durable?.object?.size ?? version.durable?.listed?.size;
    if (c0 && durableSize !== undefined) c0.durableBytes += durableSize;
    if (c0 && version.pinned) c0.pinned++;
    const placed = version.placed;
    if (!placed) {
      if (c0) {
        c0.flights++;
        c0.durableOnly++;
        c0.durableOnlyBytes += durableSize ?? 0;
      }
      continue;
    }
    const t = storageTypes[placed.storage];
    if (t) t.flights++;
    const c = byClass[version.cls.config.name];
    if (c) {
      c.flights++;
      c.bytes += placed.bytes;
      const tier = c.tiers[placed.tierIndex];
      if (tier) {
        tier.flights++;
        tier.bytes += placed.bytes;
      }
    }
  }
  for (const placed of ledger.residentCopies) {
    const t = storageTypes[placed.storage];
    if (t && placed.retired) t.pinnedRetired += placed.bytes;
    else if (t && placed.graceUntil !== undefined) t.ticketGrace += placed.bytes;
    else if (t && placed.clean) t.clean += placed.bytes;
  }
  for (const charge of ledger.openCharges) {
    const t = storageTypes[charge.storage.name];
    if (t) t.reserved += charge.bytes;
  }
  return {
    storageTypes,
    classes: byClass,
    flights,
    pinned,
    putsInProgress,
    limits: limitStats(src.limits),
    durability: durabilityStats(classes, src.durability, src.degraded),
  };
}

function limitStats(limits: LimitEnforcer<FlightVersion>): LimitNodeStats[] {
  return [...limits.tree.all()].map((n) => ({
    policy: n.policy.name,
    type: n.policy.type,
    node: n.key || '/',
    source: n.source,
    limit: n.limit,
    used: n.used,
  }));
}

function durabilityStats(
  classes: readonly RoutedClass[],
  durability: DurabilityStats,
  degraded: string[],
): ManagerStats['durability'] {
  const stores = new Set(classes.map((c) => c.config.durableStore).filter((s) => s !== undefined));
  return { ...durability, stores: [...stores], degraded };
}
