import { readFlightObject } from '../durability/flight-object.js';
import type { Durability } from '../durability/durability.js';
import type { FlightVersion } from './flight.js';
import type { Leases } from './leases.js';
import type { Catalog } from './catalog.js';
import { InvalidArgumentError } from '../errors.js';
import type { RoutedClass } from '../routing/router.js';

/** One flight of a bulk operation (backfill, prefetch), for the job runner. */
export interface BulkItem {
  path: string;
  createdAt: number;
  run(): Promise<{ outcome: 'uploaded' | 'restored' | 'skipped'; bytes: number }>;
}

/** Newest first, as DESIGN §6 orders backfill (the freshest flights are the likeliest to be read). */
function newestFirst<T extends { createdAt: number; path: string }>(versions: T[]): T[] {
  return versions.sort((a, b) => b.createdAt - a.createdAt || (a.path < b.path ? -1 : 1));
}

/**
 * Backfill: each flight without a stored durable copy gets one, unless its object is in
 * the store already (a cheap `head`, then the manifest to check it is this version).
 */
export function backfillItems(versions: FlightVersion[], durability: Durability, catalog: Catalog): BulkItem[] {
  return newestFirst(versions).map((version) => ({
    path: version.path,
    createdAt: version.createdAt,
    run: async () => {
      if (version.retired || version.durable?.state === 'stored') return { outcome: 'skipped', bytes: 0 };
      const copy = durability.copyFor(version.cls.config, version.path);
      if (!copy) return { outcome: 'skipped', bytes: 0 }; // the class is no longer durable
      if (await copy.store.head(copy.key)) {
        const object = await readFlightObject(copy.store, copy.key);
        if (object?.tag === version.tag) {
          version.durable = { ...copy, state: 'stored', object };
          catalog.durableChanged(version);
          return { outcome: 'skipped', bytes: 0 };
        }
      }
      const bytes = await durability.writeNow(version, copy);
      catalog.durableChanged(version);
      return { outcome: 'uploaded', bytes };
    },
  }));
}

/**
 * The flights of a durable class that lack a stored durable copy (a class made durable by
 * a reload, a replaced store), created at or before `before` (a cutoff or a resume
 * checkpoint), as backfill items. INVALID_ARGUMENT for an unknown or non-durable class.
 */
export function backfillFor(
  classes: readonly RoutedClass[],
  catalog: Catalog,
  className: string,
  before: number,
  now: number,
  durability: Durability,
): BulkItem[] {
  const cls = classes.find((c) => c.config.name === className);
  if (!cls) throw new InvalidArgumentError(`backfill: no storage class is named "${className}"`);
  if (cls.config.durability === 'none' || cls.config.durableStore === undefined) {
    throw new InvalidArgumentError(
      `backfill: class "${className}" has no durable store: set its durability and durableStore, reload, then backfill`,
    );
  }
  const mine = [...catalog.paths.values()].filter((v) => v.cls === cls && v.createdAt <= before && !v.isExpired(now));
  const gaps = mine.filter((v) => v.durable?.state !== 'stored' && v.placed);
  // Flights a shutdown spooled (a backfill the restart interrupted): their upload is queued
  // at start; the job counts them once their store has them.
  const spooled = mine.filter((v) => durability.isSpooled(v));
  return newestFirst([...backfillItems(gaps, durability, catalog), ...spooledItems(spooled, durability)]);
}

function spooledItems(versions: FlightVersion[], durability: Durability): BulkItem[] {
  return versions.map((version) => ({
    path: version.path,
    createdAt: version.createdAt,
    run: async () => {
      const bytes = await durability.awaitSpooled(version).catch((err: unknown) => {
        if (version.retired) return 0;
        throw err;
      });
      return version.retired ? { outcome: 'skipped', bytes: 0 } : { outcome: 'uploaded', bytes };
    },
  }));
}

/** Prefetch: each flight whose only copy is durable is restored into the first tier that takes it. */
export function prefetchItems(versions: FlightVersion[], leases: Leases): BulkItem[] {
  return newestFirst(versions).map((version) => ({
    path: version.path,
    createdAt: version.createdAt,
    run: async () => {
      if (version.retired || version.placed || version.durable?.state !== 'stored')
        return { outcome: 'skipped', bytes: 0 };
      // An unread version (listed at a start) has no tag yet: the lease reads its manifest first.
      const lease = await leases.open(version.path, version.unread ? undefined : version.tag);
      lease.release();
      return { outcome: 'restored', bytes: lease.version.durable?.object?.size ?? 0 };
    },
  }));
}
