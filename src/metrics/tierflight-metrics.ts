import { collectDefaultMetrics, Counter, Histogram, Registry } from 'prom-client';
import type { PlacementEvent } from '../storage/events.js';
import { JobMetrics } from './job-metrics.js';
import { ClusterMetrics } from './cluster-metrics.js';

/**
 * Prometheus metrics (DESIGN.md §7): the registry, the process metrics, and the counters and
 * histograms the parts report into (placement events, Flight calls, auth failures, reloads,
 * job items, cluster calls). The gauges read their part at scrape time and are registered
 * with it once it exists (`storage-gauges.ts`, `coordination-metrics.ts`, `job-metrics.ts`,
 * `cluster-metrics.ts`). Labels are bounded: never flight paths.
 */
export class TierflightMetrics {
  readonly registry = new Registry();

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

  private readonly datasetsLost = this.counter(
    'tierflight_datasets_lost_total',
    'Partitioned datasets dropped whole because a partition was evicted or expired (reason), so no reader gets part of a table',
    ['reason'],
  );

  /** A partitioned dataset lost a partition and was dropped whole. */
  datasetLost(reason: string): void {
    this.datasetsLost.inc({ reason });
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
  }

  /** Job items by outcome and bytes (job-metrics.ts); the running-jobs gauges read the runner (`registerJobGauges`). */
  private readonly jobs = new JobMetrics(this.registry);
  /** A job item finished. */
  readonly jobItem = this.jobs.item;

  /** Calls to other members (cluster-metrics.ts); the member gauges read the membership (`registerClusterGauges`). */
  readonly cluster = new ClusterMetrics(this.registry);

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
}
