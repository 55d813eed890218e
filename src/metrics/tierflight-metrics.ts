import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { PlacementEvent } from '../storage/events.js';
import type { StorageManager } from '../storage/manager.js';
import type { Reservations } from '../coordination/index.js';
import { registerCoordinationMetrics } from './coordination-metrics.js';
import { JobMetrics } from './job-metrics.js';
import { ClusterMetrics } from './cluster-metrics.js';
import type { JobRunner } from '../jobs/runner.js';

/** Default-limit nodes (segmented, hierarchical defaults) exported per policy, largest first. */
const TOP_LIMIT_NODES = 20;
/** How long one stats snapshot serves the gauges (the length of a scrape, at most). */
const SNAPSHOT_MS = 100;

/**
 * Prometheus metrics (DESIGN.md §7): the storage engine, durability and Flight calls. Counters
 * follow the placement events the manager emits; gauges read the manager's stats at scrape
 * time (exact, free between scrapes). Labels are bounded: never flight paths.
 */
export class TierflightMetrics {
  readonly registry = new Registry();
  private manager: StorageManager | undefined;

  private readonly puts = this.counter('tierflight_puts_total', 'Flights stored by DoPut', ['class', 'storage']);
  private readonly hits = this.counter('tierflight_hits_total', 'Reads served, by the storage type serving them', [
    'class',
    'storage',
  ]);
  private readonly misses = this.counter(
    'tierflight_misses_total',
    'Reads and lookups of flights that do not exist or have expired',
    [],
  );
  private readonly evictions = this.counter(
    'tierflight_evictions_total',
    'Flights evicted from a storage type to make room; outcome is dropped or spilled (to the next tier)',
    ['class', 'storage', 'outcome'],
  );
  private readonly spills = this.counter(
    'tierflight_upload_spills_total',
    'Uploads that outgrew their tier and continued in the next one',
    ['class', 'from', 'to'],
  );
  private readonly moves = this.counter('tierflight_moves_total', 'Idle flights moved down a tier (moveAfter)', [
    'class',
    'from',
    'to',
  ]);
  private readonly promotions = this.counter(
    'tierflight_promotions_total',
    'Frequently read flights moved up a tier (promoteAfter)',
    ['class', 'from', 'to'],
  );
  private readonly expiries = this.counter('tierflight_expiries_total', 'Flights removed because their TTL passed', [
    'class',
  ]);

  private readonly restores = this.counter(
    'tierflight_restores_total',
    'Flights read back from the durable store into a tier, by the storage type they landed in',
    ['class', 'storage'],
  );

  private readonly durableWriteSeconds = new Histogram({
    name: 'tierflight_durable_write_seconds',
    help: "Time to write a durable copy: a weak background upload, or a strong put's object from first byte to confirmation",
    labelNames: ['class', 'durability'],
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [this.registry],
  });
  private readonly durableWriteBytes = this.counter(
    'tierflight_durable_write_bytes_total',
    'Bytes written to durable stores',
    ['class', 'durability'],
  );
  private readonly restoreSeconds = new Histogram({
    name: 'tierflight_restore_seconds',
    help: 'Time to restore a flight from the durable store into a tier',
    labelNames: ['class'],
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [this.registry],
  });
  private readonly restoreBytes = this.counter('tierflight_restore_bytes_total', 'Bytes restored from durable stores', [
    'class',
  ]);
  private readonly durableFailures = this.counter(
    'tierflight_durable_failures_total',
    'Failed durable store operations by kind: transient (retried), permanent, not_found',
    ['class', 'operation', 'kind'],
  );
  private readonly relocationFailures = this.counter(
    'tierflight_relocation_failures_total',
    'Copies to another tier (evict spill, move, promote, restore) that did not happen; the flight stays where it was. cause: no-room or error',
    ['class', 'operation', 'cause'],
  );

  private readonly limitRejections = this.counter(
    'tierflight_limit_rejections_total',
    'Puts refused with RESOURCE_EXHAUSTED by a limit policy (onLimit: reject, or a flight larger than its limit)',
    ['policy'],
  );
  private readonly limitEvictions = this.counter(
    'tierflight_limit_evictions_total',
    'Flights (or their tier copies) evicted to keep a limit policy (onLimit: evict)',
    ['policy'],
  );
  private readonly authFailures = this.counter(
    'tierflight_auth_failures_total',
    'Calls refused by authentication or permissions, by reason (no_credentials, bad_password, expired_token, revoked_token, session_expired, throttled, permission_denied, ...)',
    ['reason'],
  );
  private readonly reloads = this.counter(
    'tierflight_config_reloads_total',
    'Config reloads by outcome: applied, invalid (the file has errors), refused (needs a restart)',
    ['outcome'],
  );
  private readonly rpcSeconds = new Histogram({
    name: 'tierflight_rpc_duration_seconds',
    help: 'Duration of Flight calls by method and final gRPC status',
    labelNames: ['method', 'code'],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [this.registry],
  });

  private readonly grpcInternal = new Gauge({
    name: 'tierflight_grpc_internal_active',
    help: 'Whether each grpc-js internal Tierflight relies on took effect (1) or a grpc-js release changed it (0): zeroCopySend, noMessageAfterStatus, honestCancels, wideWindows',
    labelNames: ['feature'],
    registers: [this.registry],
  });

  /** Reports which grpc-js internals took effect (see flight/grpc-internals.ts). */
  grpcInternals(internals: Record<string, boolean>): void {
    for (const [feature, on] of Object.entries(internals)) this.grpcInternal.set({ feature }, on ? 1 : 0);
  }

  /** A call refused: not authenticated (why), or without the permission it needed. */
  readonly authFailed = (reason: string): void => {
    this.authFailures.inc({ reason });
  };

  configReloaded(outcome: 'applied' | 'invalid' | 'refused'): void {
    this.reloads.inc({ outcome });
  }

  /** The Flight service's per-call observer. */
  readonly observeRpc = (method: string, code: string, seconds: number): void => {
    this.rpcSeconds.observe({ method, code }, seconds);
  };

  constructor() {
    // Every reason starts at 0, so dashboards and alerts see the series before the first failure.
    for (const reason of [
      'no_credentials',
      'bad_header',
      'unknown_user',
      'bad_password',
      'bad_token',
      'expired_token',
      'revoked_token',
      'session_expired',
      'throttled',
      'unknown_certificate',
      'permission_denied',
    ]) {
      this.authFailures.inc({ reason }, 0);
    }
    collectDefaultMetrics({ register: this.registry });
    // prom-client names these gauges *_total, which Prometheus reserves for counters
    // (`promtool check metrics` refuses them); sum the per-type gauges instead.
    for (const name of [
      'nodejs_active_handles_total',
      'nodejs_active_requests_total',
      'nodejs_active_resources_total',
    ]) {
      this.registry.removeSingleMetric(name);
    }
    // One snapshot serves every gauge of a scrape.
    let snapshot: { at: number; stats: ReturnType<StorageManager['stats']> } | undefined;
    const stats = (): ReturnType<StorageManager['stats']> | undefined => {
      if (!this.manager) return undefined;
      const now = performance.now();
      if (!snapshot || now - snapshot.at > SNAPSHOT_MS) snapshot = { at: now, stats: this.manager.stats() };
      return snapshot.stats;
    };
    this.gauge('tierflight_storage_capacity_bytes', 'Configured capacity of each storage type', ['storage'], (set) => {
      for (const [storage, s] of Object.entries(stats()?.storageTypes ?? {})) set({ storage }, s.capacity);
    });
    this.gauge(
      'tierflight_storage_used_bytes',
      'Bytes charged to each storage type: flights, copies still being read, uploads in progress',
      ['storage'],
      (set) => {
        for (const [storage, s] of Object.entries(stats()?.storageTypes ?? {})) set({ storage }, s.used);
      },
    );
    this.gauge(
      'tierflight_storage_reserved_bytes',
      'Bytes charged to writers in progress (uploads, spills, moves)',
      ['storage'],
      (set) => {
        for (const [storage, s] of Object.entries(stats()?.storageTypes ?? {})) set({ storage }, s.reserved);
      },
    );
    this.gauge(
      'tierflight_storage_pinned_bytes',
      'Bytes of replaced, evicted or moved copies that readers still hold',
      ['storage'],
      (set) => {
        for (const [storage, s] of Object.entries(stats()?.storageTypes ?? {})) set({ storage }, s.pinnedRetired);
      },
    );
    this.gauge(
      'tierflight_storage_ticket_grace_bytes',
      'Bytes of replaced versions kept for the tickets issued for them (server.ticketGrace)',
      ['storage'],
      (set) => {
        for (const [storage, s] of Object.entries(stats()?.storageTypes ?? {})) set({ storage }, s.ticketGrace);
      },
    );
    this.gauge(
      'tierflight_storage_flights',
      'Flights whose current copy is in each storage type',
      ['storage'],
      (set) => {
        for (const [storage, s] of Object.entries(stats()?.storageTypes ?? {})) set({ storage }, s.flights);
      },
    );
    this.gauge('tierflight_class_bytes', 'Bytes of each class per tier', ['class', 'tier', 'storage'], (set) => {
      for (const [cls, c] of Object.entries(stats()?.classes ?? {})) {
        c.tiers.forEach((t, i) => set({ class: cls, tier: String(i), storage: t.storage }, t.bytes));
      }
    });
    this.gauge('tierflight_class_flights', 'Flights of each class per tier', ['class', 'tier', 'storage'], (set) => {
      for (const [cls, c] of Object.entries(stats()?.classes ?? {})) {
        c.tiers.forEach((t, i) => set({ class: cls, tier: String(i), storage: t.storage }, t.flights));
      }
    });
    this.gauge(
      'tierflight_class_durable_bytes',
      "Bytes of each class's objects in its durable store",
      ['class'],
      (set) => {
        for (const [cls, c] of Object.entries(stats()?.classes ?? {})) set({ class: cls }, c.durableBytes);
      },
    );
    this.gauge(
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
    this.gauge(
      'tierflight_limit_bytes',
      'The limit of each limit node (policy and subtree)',
      ['policy', 'node'],
      (set) => {
        for (const n of limitNodes()) set({ policy: n.policy, node: n.node }, n.limit);
      },
    );
    this.gauge(
      'tierflight_limit_used_bytes',
      'Bytes counted against each limit node (policy and subtree)',
      ['policy', 'node'],
      (set) => {
        for (const n of limitNodes()) set({ policy: n.policy, node: n.node }, n.used);
      },
    );
    this.gauge(
      'tierflight_durable_store_degraded',
      '1 while a durable store could not be reached to recover its flights (the server serves without them), else 0',
      ['store'],
      (set) => {
        const d = stats()?.durability;
        for (const store of d?.stores ?? []) set({ store }, d?.degraded.includes(store) ? 1 : 0);
      },
    );
    this.gauge('tierflight_durable_queue_depth', 'Weak-durability uploads waiting or running', [], (set) => {
      set({}, stats()?.durability.queueDepth ?? 0);
    });
    this.gauge(
      'tierflight_durable_queue_oldest_seconds',
      'How long the oldest waiting weak-durability upload has waited',
      [],
      (set) => {
        set({}, (stats()?.durability.oldestAgeMs ?? 0) / 1000);
      },
    );
    this.gauge(
      'tierflight_durable_uploads',
      'Durable uploads completed and failed attempts since start',
      ['outcome'],
      (set) => {
        const d = stats()?.durability;
        set({ outcome: 'ok' }, d?.uploads ?? 0);
        set({ outcome: 'failed_attempt' }, d?.uploadFailures ?? 0);
      },
    );
    this.gauge('tierflight_uploads_in_progress', 'DoPut streams not yet finished', [], (set) => {
      set({}, stats()?.putsInProgress ?? 0);
    });
  }

  /** Reads gauges from this manager at scrape time. */
  bind(manager: StorageManager): void {
    this.manager = manager;
  }

  private jobRunner: JobRunner | undefined;
  private readonly jobs = new JobMetrics(this.registry, () => this.jobRunner);
  /** A job item finished (job-metrics.ts). */
  readonly jobItem = this.jobs.item;

  /** Reads the running-jobs gauge from this runner. */
  bindJobs(runner: JobRunner): void {
    this.jobRunner = runner;
  }

  /** Members and calls to them (cluster-metrics.ts): `bind` the membership, `call` per finished call. */
  readonly cluster = new ClusterMetrics(this.registry);

  /** Coordination metrics from this server's reservations (see coordination-metrics.ts). */
  bindReservations(reservations: Reservations): void {
    registerCoordinationMetrics(this.registry, reservations);
  }

  /** The manager's event observer. */
  readonly observe = (e: PlacementEvent): void => {
    switch (e.type) {
      case 'put':
        this.puts.inc({ class: e.version.cls.config.name, storage: e.storage });
        return;
      case 'hit':
        this.hits.inc({ class: e.version.cls.config.name, storage: e.storage });
        return;
      case 'miss':
        this.misses.inc();
        return;
      case 'evict':
        this.evictions.inc({ class: e.version.cls.config.name, storage: e.storage, outcome: e.outcome });
        return;
      case 'spill':
        this.spills.inc({ class: e.cls.config.name, from: e.from, to: e.to });
        return;
      case 'move':
        this.moves.inc({ class: e.version.cls.config.name, from: e.from, to: e.to });
        return;
      case 'promote':
        this.promotions.inc({ class: e.version.cls.config.name, from: e.from, to: e.to });
        return;
      case 'expire':
        this.expiries.inc({ class: e.version.cls.config.name });
        return;
      case 'restore':
        this.restores.inc({ class: e.version.cls.config.name, storage: e.storage });
        this.restoreSeconds.observe({ class: e.version.cls.config.name }, e.seconds);
        this.restoreBytes.inc({ class: e.version.cls.config.name }, e.bytes);
        return;
      case 'durable-write': {
        const labels = { class: e.version.cls.config.name, durability: e.durability };
        this.durableWriteSeconds.observe(labels, e.seconds);
        this.durableWriteBytes.inc(labels, e.bytes);
        return;
      }
      case 'limit-reject':
        this.limitRejections.inc({ policy: e.policy });
        return;
      case 'limit-evict':
        this.limitEvictions.inc({ policy: e.policy });
        return;
      case 'durable-failure':
        this.durableFailures.inc({ class: e.cls.config.name, operation: e.operation, kind: e.kind });
        return;
      case 'relocation-failed':
        this.relocationFailures.inc({ class: e.version.cls.config.name, operation: e.operation, cause: e.cause });
        return;
    }
  };

  private counter<L extends string>(name: string, help: string, labelNames: readonly L[]): Counter<L> {
    return new Counter({ name, help, labelNames, registers: [this.registry] });
  }

  private gauge<L extends string>(
    name: string,
    help: string,
    labelNames: readonly L[],
    fill: (set: (labels: Partial<Record<L, string>>, value: number) => void) => void,
  ): void {
    new Gauge({
      name,
      help,
      labelNames,
      registers: [this.registry],
      collect() {
        this.reset();
        fill((labels, value) => this.set(labels, value));
      },
    });
  }
}
