import type { StorageTypeName } from '../config/schema.js';
import type { RoutedClass } from '../routing/router.js';
import type { FlightVersion, Placed } from './flight.js';
import type { Charge } from './put-session.js';
import type { StorageType } from './storage-type.js';
import type { DurabilityStats } from './durability.js';

export interface StorageTypeStats {
  capacity: number;
  used: number;
  /** Visible flights whose current copy is here. */
  flights: number;
  /** Bytes of copies no longer current but still being read. */
  pinnedRetired: number;
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

const NO_DURABILITY: ManagerStats['durability'] = {
  queueDepth: 0,
  oldestAgeMs: 0,
  uploads: 0,
  uploadFailures: 0,
  deletes: 0,
  stores: [],
  degraded: [],
};

export function computeStats(
  types: ReadonlyMap<StorageTypeName, StorageType>,
  classes: readonly RoutedClass[],
  versions: Iterable<FlightVersion>,
  resident: Iterable<Placed>,
  charges: Iterable<Charge>,
  putsInProgress: number,
): ManagerStats {
  const storageTypes: ManagerStats['storageTypes'] = {};
  for (const [name, type] of types) {
    storageTypes[name] = { capacity: type.capacity, used: type.used, flights: 0, pinnedRetired: 0, reserved: 0 };
  }
  const byClass: ManagerStats['classes'] = {};
  for (const cls of classes) {
    byClass[cls.config.name] = {
      prefix: cls.prefix,
      flights: 0,
      bytes: 0,
      durableBytes: 0,
      durableOnly: 0,
      tiers: cls.config.tiers.map((t) => ({ storage: t.storage, flights: 0, bytes: 0 })),
    };
  }
  let flights = 0;
  for (const version of versions) {
    flights++;
    const c0 = byClass[version.cls.config.name];
    if (c0 && version.durable?.object) c0.durableBytes += version.durable.object.size;
    const placed = version.placed;
    if (!placed) {
      if (c0) {
        c0.flights++;
        c0.durableOnly++;
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
  for (const placed of resident) {
    const t = storageTypes[placed.storage];
    if (t && placed.retired) t.pinnedRetired += placed.bytes;
  }
  for (const charge of charges) {
    const t = storageTypes[charge.storage.name];
    if (t) t.reserved += charge.bytes;
  }
  return { storageTypes, classes: byClass, flights, putsInProgress, limits: [], durability: NO_DURABILITY };
}

/**
 * The accounting invariant, for tests: every storage type's used bytes equal what its
 * copies (current, or retired but still read) and unfinished writers hold, within
 * capacity; every visible flight has a copy somewhere.
 */
export function checkAccounting(
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
