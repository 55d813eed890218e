import { Counter, Gauge, type Registry } from 'prom-client';
import { collectionsRequested, garbageBytes } from '../core/garbage.js';
import type { StorageManager } from '../storage/manager.js';

/** Default-limit nodes (segmented, hierarchical defaults) exported per policy, largest first. */
const TOP_LIMIT_NODES = 20;
/** How long one stats snapshot serves the gauges (the length of a scrape, at most). */
const SNAPSHOT_MS = 100;

/**
 * The storage gauges (DESIGN.md §7), read from the manager's stats at scrape time (exact,
 * free between scrapes): storage types, classes, limit nodes, durability, puts in progress.
 */
export function registerStorageGauges(registry: Registry, manager: StorageManager): void {
  const gauge = <L extends string>(
    name: string,
    help: string,
    labelNames: readonly L[],
    fill: (set: (labels: Partial<Record<L, string>>, value: number) => void) => void,
  ): void => {
    new Gauge({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        this.reset();
        fill((labels, value) => this.set(labels, value));
      },
    });
  };
  // One snapshot serves every gauge of a scrape.
  let snapshot: { at: number; stats: ReturnType<StorageManager['stats']> } | undefined;
  const stats = (): ReturnType<StorageManager['stats']> => {
    const now = performance.now();
    if (!snapshot || now - snapshot.at > SNAPSHOT_MS) snapshot = { at: now, stats: manager.stats() };
    return snapshot.stats;
  };
  gauge('tierflight_storage_capacity_bytes', 'Configured capacity of each storage type', ['storage'], (set) => {
    for (const [storage, s] of Object.entries(stats()?.storageTypes ?? {})) set({ storage }, s.capacity);
  });
  gauge(
    'tierflight_storage_used_bytes',
    'Bytes charged to each storage type: flights, copies still being read, uploads in progress',
    ['storage'],
    (set) => {
      for (const [storage, s] of Object.entries(stats()?.storageTypes ?? {})) set({ storage }, s.used);
    },
  );
  gauge(
    'tierflight_storage_reserved_bytes',
    'Bytes charged to writers in progress (uploads, spills, moves)',
    ['storage'],
    (set) => {
      for (const [storage, s] of Object.entries(stats()?.storageTypes ?? {})) set({ storage }, s.reserved);
    },
  );
  gauge(
    'tierflight_storage_pinned_bytes',
    'Bytes of replaced, evicted or moved copies that readers still hold',
    ['storage'],
    (set) => {
      for (const [storage, s] of Object.entries(stats()?.storageTypes ?? {})) set({ storage }, s.pinnedRetired);
    },
  );
  gauge(
    'tierflight_storage_ticket_grace_bytes',
    'Bytes of replaced versions kept for the tickets issued for them (server.ticketGrace)',
    ['storage'],
    (set) => {
      for (const [storage, s] of Object.entries(stats()?.storageTypes ?? {})) set({ storage }, s.ticketGrace);
    },
  );
  gauge(
    'tierflight_storage_clean_copy_bytes',
    'Bytes of clean copies promotions left below the copies they made: dropped first under pressure, reused when the flight moves back down',
    ['storage'],
    (set) => {
      for (const [storage, s] of Object.entries(stats()?.storageTypes ?? {})) set({ storage }, s.clean);
    },
  );
  gauge('tierflight_storage_flights', 'Flights whose current copy is in each storage type', ['storage'], (set) => {
    for (const [storage, s] of Object.entries(stats()?.storageTypes ?? {})) set({ storage }, s.flights);
  });
  gauge('tierflight_class_bytes', 'Bytes of each class per tier', ['class', 'tier', 'storage'], (set) => {
    for (const [cls, c] of Object.entries(stats()?.classes ?? {})) {
      c.tiers.forEach((t, i) => set({ class: cls, tier: String(i), storage: t.storage }, t.bytes));
    }
  });
  gauge('tierflight_class_flights', 'Flights of each class per tier', ['class', 'tier', 'storage'], (set) => {
    for (const [cls, c] of Object.entries(stats()?.classes ?? {})) {
      c.tiers.forEach((t, i) => set({ class: cls, tier: String(i), storage: t.storage }, t.flights));
    }
  });
  gauge('tierflight_class_durable_bytes', "Bytes of each class's objects in its durable store", ['class'], (set) => {
    for (const [cls, c] of Object.entries(stats()?.classes ?? {})) set({ class: cls }, c.durableBytes);
  });
  gauge(
    'tierflight_class_durable_only_flights',
    'Flights whose only copy is the durable one (evicted, or found after a restart)',
    ['class'],
    (set) => {
      for (const [cls, c] of Object.entries(stats()?.classes ?? {})) set({ class: cls }, c.durableOnly);
    },
  );
  // Limit nodes: configured limits and overrides always, plus the largest consumers of
  // segmented and hierarchical defaults, so the number of series stays bounded.
  const limitNodes = () => {
    const nodes = stats()?.limits ?? [];
    const fixed = nodes.filter((n) => n.source !== 'default' && n.type !== 'segmented');
    const rest = nodes.filter((n) => !fixed.includes(n)).sort((a, b) => b.used - a.used);
    return [...fixed, ...rest.slice(0, TOP_LIMIT_NODES)];
  };
  gauge('tierflight_limit_bytes', 'The limit of each limit node (policy and subtree)', ['policy', 'node'], (set) => {
    for (const n of limitNodes()) set({ policy: n.policy, node: n.node }, n.limit);
  });
  gauge(
    'tierflight_limit_used_bytes',
    'Bytes counted against each limit node (policy and subtree)',
    ['policy', 'node'],
    (set) => {
      for (const n of limitNodes()) set({ policy: n.policy, node: n.node }, n.used);
    },
  );
  gauge(
    'tierflight_durable_store_degraded',
    '1 while a durable store could not be reached to recover its flights (the server serves without them), else 0',
    ['store'],
    (set) => {
      const d = stats()?.durability;
      for (const store of d?.stores ?? []) set({ store }, d?.degraded.includes(store) ? 1 : 0);
    },
  );
  gauge('tierflight_durable_queue_depth', 'Weak-durability uploads waiting or running', [], (set) => {
    set({}, stats()?.durability.queueDepth ?? 0);
  });
  gauge(
    'tierflight_durable_queue_oldest_seconds',
    'How long the oldest waiting weak-durability upload has waited',
    [],
    (set) => {
      set({}, (stats()?.durability.oldestAgeMs ?? 0) / 1000);
    },
  );
  gauge(
    'tierflight_durable_uploads',
    'Durable uploads completed and failed attempts since start',
    ['outcome'],
    (set) => {
      const d = stats()?.durability;
      set({ outcome: 'ok' }, d?.uploads ?? 0);
      set({ outcome: 'failed_attempt' }, d?.uploadFailures ?? 0);
    },
  );
  gauge('tierflight_uploads_in_progress', 'DoPut streams not yet finished', [], (set) => {
    set({}, stats()?.putsInProgress ?? 0);
  });
}

/** Which grpc-js internals Tierflight relies on took effect (see flight/grpc-internals.ts). */
export function registerGrpcInternals(registry: Registry, internals: Readonly<Record<string, boolean>>): void {
  const gauge = new Gauge({
    name: 'tierflight_grpc_internal_active',
    help: 'Whether each grpc-js internal Tierflight relies on took effect (1) or a grpc-js release changed it (0): zeroCopySend, noMessageAfterStatus, piecewiseReceive, honestCancels, wideWindows',
    labelNames: ['feature'],
    registers: [registry],
  });
  for (const [feature, on] of Object.entries(internals)) gauge.set({ feature }, on ? 1 : 0);
}

/** What core/garbage.ts sees and does: buffer memory beyond what the memory tier keeps, and the collections it asked for. */
export function registerBufferMetrics(registry: Registry): void {
  new Gauge({
    name: 'tierflight_buffer_garbage_bytes',
    help: 'ArrayBuffer memory V8 holds beyond what the memory tier keeps: garbage not collected yet, read pools, buffers in flight',
    registers: [registry],
    collect() {
      this.set(garbageBytes());
    },
  });
  new Counter({
    name: 'tierflight_buffer_collections_total',
    help: "Major GCs Tierflight asked V8 for because dropped buffers passed 128 MiB (0 without the server's Node flags)",
    registers: [registry],
    collect() {
      this.reset();
      this.inc(collectionsRequested());
    },
  });
}
