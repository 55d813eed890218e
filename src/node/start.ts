import { watch } from 'node:fs';
import path from 'node:path';
import { spoolDirectory } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { systemClock, type Clock } from '../core/clock.js';
import { lockDirectories } from '../core/directory-lock.js';
import type { Logger } from '../core/log.js';
import { Timers } from '../core/timers.js';
import type { ClusterNode } from '../cluster/cluster-node.js';
import { Handover } from '../cluster/handover.js';
import { createReservationStore, type Reservations } from '../coordination/index.js';
import { createDurableStore } from '../durable/index.js';
import { FilesystemStore } from '../durable/filesystem-store.js';
import { startFlightServer, type FlightServer } from '../flight/server.js';
import { applyCipherPolicy, TlsFiles } from '../flight/tls.js';
import { startMetricsServer, type MetricsServer } from '../metrics/http-server.js';
import { registerBufferMetrics, registerGrpcInternals } from '../metrics/storage-gauges.js';
import { TierflightMetrics } from '../metrics/tierflight-metrics.js';
import type { StorageManager } from '../storage/manager.js';
import { composeNode } from './compose.js';
import { ownedDirectories, removeStaleTemporaries } from './directories.js';
import { reloadNode, type ReloadState } from './reload.js';

/** A node that serves: its parts, how to reload its config, how to stop it. */
export interface RunningNode {
  readonly manager: StorageManager;
  readonly reservations: Reservations;
  readonly flight: FlightServer;
  readonly metrics: TierflightMetrics;
  /** The metrics HTTP server, when `server.metrics` is set. */
  readonly metricsServer: MetricsServer | undefined;
  /** This node's part in a cluster (`cluster` in the config), or undefined. */
  readonly cluster: ClusterNode | undefined;
  /**
   * Where flights of durable classes still without a durable copy wait at shutdown (every
   * config with a durable class has one: `server.spool`, or this node's default).
   */
  readonly spool: string | undefined;
  /** Re-reads the config file and applies it, or keeps the running config; true when applied. */
  reload(): boolean;
  /** Stops in the reverse order of the start (see `startNode`). */
  stop(): Promise<void>;
}

export interface NodeOptions {
  /** The file the config came from: reloaded on SIGHUP (via `reload`) and when it changes. */
  configFile?: string;
  /** Command-line overrides, applied to every reloaded file as they were to the first. */
  overrides?: (config: Config) => Config;
  /** False only to measure the IPC validator's cost (bench/validator.ts). */
  validateIpc?: boolean;
}

/**
 * How often housekeeping runs: expiry (expired flights are never served even between
 * sweeps) and moveAfter.
 */
const SWEEP_INTERVAL_MS = 5_000;
/** Editors write a file in several steps; reload once they are done. */
const RELOAD_DEBOUNCE_MS = 200;

/**
 * Starts one node (`composeNode` builds its parts) in the order that keeps another server's
 * data safe: lock every directory this one owns (a second server refuses here, before
 * touching anything), bind the metrics and Flight ports (an address in use stops it here,
 * still before anything was wiped), then wipe the tier directories and recover durable
 * flights, and only then answer calls. Each step puts its undoing on one stack: a failed
 * start unwinds what was done, and `stop` runs the stack in reverse order — calls refused,
 * housekeeping and handover stopped, jobs and calls drained (`server.shutdownGrace`), the
 * cluster left, weak uploads given the same grace (then spooled), reservations closed, the
 * metrics port closed, the directories unlocked.
 */
export async function startNode(
  config: Config,
  logger: Logger,
  clock: Clock = systemClock,
  options: NodeOptions = {},
): Promise<RunningNode> {
  const stack = new AsyncDisposableStack();
  let ready = false;
  /** The grace calls and uploads get at shutdown: none when a failed start unwinds. */
  let grace = 0;
  try {
    const state: ReloadState = {
      running: config,
      spool: undefined,
      locks: lockDirectories(ownedDirectories(config)),
      metricsServer: undefined,
    };
    stack.defer(() => {
      for (const lock of state.locks) lock.release();
    });
    if (config.server.tls) applyCipherPolicy(config.server.tls);
    const tls = config.server.tls ? new TlsFiles(config.server.tls, logger) : undefined;

    const metrics = new TierflightMetrics();
    /** The manager once it is built: readiness reports its degraded stores. */
    const built: { manager?: StorageManager } = {};
    if (config.server.metrics !== undefined) {
      const readiness = () => ({ ready, degraded: built.manager?.degradedStores ?? [] });
      const server = await startMetricsServer(config.server.metrics, metrics.registry, readiness, logger, {
        ...(tls ? { tls: tls.pem, requireClientCert: config.server.tls?.requireClientCert === true } : {}),
        ...(config.server.metricsToken !== undefined ? { token: config.server.metricsToken } : {}),
      });
      state.metricsServer = server;
      stack.defer(() => server.stop());
    }

    const spoolDir = spoolDirectory(config);
    state.spool = spoolDir ? new FilesystemStore('spool', spoolDir) : undefined;
    const durableStores = new Map(
      await Promise.all(config.durableStores.map(async (s) => [s.id, await createDurableStore(s)] as const)),
    );
    const reservationStore = await createReservationStore(config.reservations, clock);
    if (reservationStore.startError) {
      logger.warn(
        { store: reservationStore.type, err: reservationStore.startError },
        'the reservation store cannot be reached: reserve and waits answer UNAVAILABLE until it is back',
      );
    }
    const parts = composeNode(
      config,
      logger,
      clock,
      metrics,
      { tls, durableStores, spool: state.spool, reservationStore },
      options.validateIpc,
    );
    built.manager = parts.manager;
    const { reservations, jobs, credential, cluster } = parts;
    stack.defer(() => reservations.close());
    stack.defer(() => parts.datasets.close());
    let initialized = false;
    stack.defer(async () => {
      // Weak uploads still queued get the grace to reach the store; then flights of a
      // durable class still without a copy are spooled for the next start.
      if (initialized) await parts.manager.close(grace);
    });
    await reservations.start();

    if (credential) {
      await credential.start();
      stack.defer(() => credential.stop());
    }
    if (cluster) {
      await cluster.start();
      stack.defer(() => cluster.stop());
    }
    const flight = await startFlightServer(config.server, parts.manager, logger, {
      ...parts.flightOptions,
      ready: () => ready,
    });
    stack.defer(async () => {
      // Jobs stop first (the items running finish), so a client following one gets its
      // last progress, "stopped" with the checkpoint to resume from, before calls drain.
      const jobsStopped = jobs.close();
      await flight.stop(grace);
      await jobsStopped;
    });
    registerGrpcInternals(metrics.registry, { ...flight.internals });
    registerBufferMetrics(metrics.registry);

    await parts.manager.init();
    initialized = true;
    if (cluster) {
      const handover = new Handover(parts.manager, cluster, logger, clock);
      handover.start();
      stack.defer(() => handover.stop());
    }
    removeStaleTemporaries(durableStores, state.spool, logger);

    const timers = new Timers(clock, (err) => logger.error({ err: (err as Error).message }, 'housekeeping failed'));
    timers.every(SWEEP_INTERVAL_MS, () => parts.manager.tick());
    stack.defer(() => timers.stop());
    const reload = (): boolean => reloadNode(parts, state, options.configFile, options.overrides, logger);
    const file = options.configFile;
    if (file) {
      const changed = timers.debounce(RELOAD_DEBOUNCE_MS, () => {
        logger.info({ config: file }, 'config file changed; reloading');
        reload();
      });
      watchConfig(file, changed, stack, logger);
    }

    ready = true;
    stack.defer(() => {
      ready = false;
    });
    grace = config.server.shutdownGrace;
    const running = stack.move();
    return {
      manager: parts.manager,
      reservations,
      flight,
      metrics,
      metricsServer: state.metricsServer,
      cluster,
      get spool() {
        return state.spool?.root;
      },
      reload,
      stop: async () => {
        await running.disposeAsync();
        logger.info('stopped');
      },
    };
  } catch (err) {
    await stack.disposeAsync();
    throw err;
  }
}

/** Reloads when the config file changes (watching its folder: editors replace files by rename). */
function watchConfig(file: string, changed: () => void, stack: AsyncDisposableStack, logger: Logger): void {
  try {
    const watcher = watch(path.dirname(file), (_event, name) => {
      if (name === path.basename(file)) changed();
    });
    watcher.unref();
    stack.defer(() => watcher.close());
  } catch (err) {
    logger.warn({ config: file, err: (err as Error).message }, 'cannot watch the config file; reload with SIGHUP');
  }
}
