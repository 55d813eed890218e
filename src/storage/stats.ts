import type { StorageTypeName } from '../config/schema.js';
import type { RoutedClass } from '../routing/router.js';
import type { FlightVersion } from './flight.js';
import type { Ledger } from './ledger.js';
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

export function computeStats(src: StatsSources): ManagerStats {
  const { ledger, classes, putsInProgress } = src;
  const storageTypes: ManagerStats['storageTypes'] = {};
  for (const [name, type] of ledger.types) {
    storageTypes[name] = {
      capacity: type.capacity,
      used: type.used,
      flights: 0,
      pinnedRetired: 0,
      ticketGrace: 0,
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
  }
  for (const charge of ledger.openCharges) {
    const t = storageTypes[charge.storage.name];
    if (t) t.reserved += charge.bytes;
  }
  const stores = new Set(classes.map((c) => c.config.durableStore).filter((s) => s !== undefined));
  return {
    storageTypes,
    classes: byClass,
    flights,
    pinned,
    putsInProgress,
    limits: [...src.limits.tree.all()].map((n) => ({
      policy: n.policy.name,
      type: n.policy.type,
      node: n.key || '/',
      source: n.source,
      limit: n.limit,
      used: n.used,
    })),
    durability: { ...src.durability, stores: [...stores], degraded: src.degraded },
  };
}
