import { readFileSync, watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import { ConfigError, loadConfigFile, spoolDirectory } from './config/load.js';
import type { Config } from './config/schema.js';
import { startFlightServer, type FlightServer } from './flight/server.js';
import { startMetricsServer, type MetricsServer } from './metrics/http-server.js';
import { TierflightMetrics } from './metrics/tierflight-metrics.js';
import { createDurableStore } from './durable/index.js';
import { FilesystemStore } from './durable/filesystem-store.js';
import type { DurableStore } from './durable/durable-store.js';
import { StorageManager } from './storage/manager.js';
import { noAuthentication, SwitchableAuthenticator, type Authenticator } from './auth/authenticator.js';
import { UsersAuthenticator } from './auth/users.js';
import { denialReporter } from './auth/denials.js';
import { applyCipherPolicy, TlsFiles } from './flight/tls.js';
import { JobRunner } from './jobs/runner.js';
import { ClusterNode } from './cluster/cluster-node.js';
import { Timers } from './core/timers.js';
import { Handover } from './cluster/handover.js';
import { NodeCredential } from './auth/node-credential.js';
import type { FlightClientOptions } from './client/flight-client.js';
import { createReservationStore, Reservations } from './coordination/index.js';
import { systemClock, type Clock } from './core/clock.js';
import { lockDirectories } from './core/directory-lock.js';
import type { Logger } from './core/log.js';

export interface App {
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
  stop(): Promise<void>;
}

/** Reloads when the config file changes (watching its folder: editors replace files by rename). */
function watchFile(file: string, reload: () => boolean, logger: Logger): FSWatcher | undefined {
  let timer: NodeJS.Timeout | undefined;
  try {
    const watcher = watch(path.dirname(file), (_event, name) => {
      if (name !== path.basename(file)) return;
      clearTimeout(timer);
      timer = setTimeout(() => {
        logger.info({ config: file }, 'config file changed; reloading');
        reload();
      }, RELOAD_DEBOUNCE_MS);
    });
    watcher.unref();
    return watcher;
  } catch (err) {
    logger.warn({ config: file, err: (err as Error).message }, 'cannot watch the config file; reload with SIGHUP');
    return undefined;
  }
}

/** Editors write a file in several steps; reload once they are done. */
const RELOAD_DEBOUNCE_MS = 200;

/**
 * How often housekeeping runs: expiry (expired flights are never served even between
 * sweeps) and moveAfter.
 */
const SWEEP_INTERVAL_MS = 5_000;

export interface AppOptions {
  /** The file the config came from: reloaded on SIGHUP (via `reload`) and when it changes. */
  configFile?: string;
  /** Command-line overrides, applied to every reloaded file as they were to the first. */
  overrides?: (config: Config) => Config;
  /** False only to measure the IPC validator's cost (bench/validator.ts). */
  validateIpc?: boolean;
}

/** How old a temporary file in a shared filesystem store must be to count as abandoned. */
const STALE_TEMPORARY_MS = 60 * 60 * 1000;

/**
 * Removes what puts killed mid-write left: every temporary file in the spool (this server
 * owns it), and those older than an hour in filesystem stores (which servers may share).
 */
function removeStaleTemporaries(
  stores: ReadonlyMap<string, DurableStore>,
  spool: FilesystemStore | undefined,
  logger: Logger,
): void {
  const jobs: [FilesystemStore, number][] = [...stores.values()]
    .filter((s): s is FilesystemStore => s instanceof FilesystemStore)
    .map((s) => [s, STALE_TEMPORARY_MS]);
  if (spool) jobs.push([spool, 0]);
  for (const [store, age] of jobs) {
    store.removeStaleTemporaries(age).then(
      (removed) =>
        removed > 0 && logger.info({ store: store.id, removed }, 'removed temporary files of unfinished writes'),
      (err: unknown) =>
        logger.warn({ store: store.id, err: (err as Error).message }, 'could not clean temporary files'),
    );
  }
}

/** How this node calls the others: over TLS when it serves TLS, presenting its own certificate (mutual TLS). */
function nodeClientOptions(config: Config): FlightClientOptions {
  const tls = config.server.tls;
  if (!tls) return {};
  return {
    tls: {
      ca: tls.clientCa !== undefined ? readFileSync(tls.clientCa) : undefined,
      cert: readFileSync(tls.cert),
      key: readFileSync(tls.key),
    },
  };
}

/** The directories this server must own alone: every tier directory, and the spool. */
export function ownedDirectories(config: Config): { dir: string; what: string }[] {
  const types = config.storageTypes;
  const spool = spoolDirectory(config);
  return [
    ...(types.disk_mapped ? [{ dir: types.disk_mapped.path, what: 'disk_mapped tier directory' }] : []),
    ...(types.disk ? [{ dir: types.disk.path, what: 'disk tier directory' }] : []),
    ...(spool !== undefined
      ? [{ dir: spool, what: config.server.spool !== undefined ? 'spool (server.spool)' : 'default spool directory' }]
      : []),
  ];
}

/**
 * Starts in the order that keeps another server's data safe: lock every directory this one
 * owns (a second server refuses here, before touching anything), bind the Flight and
 * metrics ports (an address in use stops it here, still before anything was wiped), then
 * wipe the tier directories and recover durable flights, and only then answer calls.
 */
export async function startApp(
  config: Config,
  logger: Logger,
  clock: Clock = systemClock,
  options: AppOptions = {},
): Promise<App> {
  const locks = lockDirectories(ownedDirectories(config));
  const metrics = new TierflightMetrics();
  let ready = false;
  let metricsServer: MetricsServer | undefined;
  let flight: FlightServer | undefined;
  let manager: StorageManager;
  let reservations: Reservations | undefined;
  const authenticatorFor = (c: Config): Authenticator =>
    c.auth ? new UsersAuthenticator(c.auth, logger, metrics.authFailed) : noAuthentication;
  const authenticator = new SwitchableAuthenticator(authenticatorFor(config));
  let tls: TlsFiles | undefined;
  const jobs = new JobRunner(clock, logger, metrics.jobItem);
  metrics.bindJobs(jobs);
  let spool: FilesystemStore | undefined;
  let cluster: ClusterNode | undefined;
  let nodeCredential: NodeCredential | undefined;
  let handover: Handover | undefined;
  try {
    if (config.server.tls) applyCipherPolicy(config.server.tls);
    tls = config.server.tls ? new TlsFiles(config.server.tls, logger) : undefined;
    const durableStores = new Map(
      await Promise.all(config.durableStores.map(async (s) => [s.id, await createDurableStore(s)] as const)),
    );
    const spoolDir = spoolDirectory(config);
    spool = spoolDir ? new FilesystemStore('spool', spoolDir) : undefined;
    const reservationStore = await createReservationStore(config.reservations, clock);
    if (reservationStore.startError) {
      logger.warn(
        { store: reservationStore.type, err: reservationStore.startError },
        'the reservation store cannot be reached: reserve and waits answer UNAVAILABLE until it is back',
      );
    }
    // Waiters read what has landed here, or what another node put in the shared store.
    const landingHost = {
      has: (path: string) => manager.has([path]),
      adopt: (path: string) => manager.adoptFromStore(path),
    };
    reservations = new Reservations(reservationStore, config.reservations, clock, logger, landingHost);
    manager = new StorageManager({
      config,
      clock,
      logger,
      durableStores,
      ...(spool ? { spool } : {}),
      // Told when a flight lands: its waiters answer, its reservation goes.
      landing: reservations,
    });
    metrics.bind(manager);
    manager.events.subscribe(metrics.observe);
    await reservations.start();
    metrics.bindReservations(reservations);
    if (config.server.metrics !== undefined) {
      const readiness = () => ({ ready, degraded: manager.degradedStores });
      metricsServer = await startMetricsServer(config.server.metrics, metrics.registry, readiness, logger, {
        ...(tls ? { tls: tls.pem, requireClientCert: config.server.tls?.requireClientCert === true } : {}),
        ...(config.server.metricsToken !== undefined ? { token: config.server.metricsToken } : {}),
      });
    }
    if (config.cluster) {
      // With auth, node-to-node calls carry this node's credential (signed with the shared secret).
      const credential = config.auth ? new NodeCredential(config.auth, config.cluster.self) : undefined;
      await credential?.start();
      nodeCredential = credential;
      cluster = new ClusterNode(config.cluster, clock, logger, {
        manager,
        client: nodeClientOptions(config),
        ...(credential ? { nodeHeaders: () => credential.headers() } : {}),
        observe: metrics.cluster.call,
      });
      metrics.cluster.bind(cluster.membership);
      await cluster.start();
    }
    flight = await startFlightServer(config.server, manager, logger, {
      ...(cluster ? { cluster } : {}),
      ...(cluster?.location && config.server.advertise === undefined ? { advertise: cluster.location } : {}),
      observeRpc: metrics.observeRpc,
      ready: () => ready,
      reservations,
      jobs,
      authenticator,
      denied: denialReporter(logger, () => metrics.authFailed('permission_denied')),
      ...(tls ? { credentials: tls.credentials() } : {}),
      ...(options.validateIpc === undefined ? {} : { validateIpc: options.validateIpc }),
    });
    metrics.grpcInternals({ ...flight.internals });
    await manager.init();
    if (cluster) {
      handover = new Handover(manager, cluster, logger, clock);
      handover.start();
    }
    removeStaleTemporaries(durableStores, spool, logger);
  } catch (err) {
    cluster?.stop();
    nodeCredential?.stop();
    await flight?.stop(0);
    await metricsServer?.stop();
    await reservations?.close();
    for (const lock of locks) lock.release();
    throw err;
  }
  ready = true;
  const coordination = reservations as Reservations;
  const timers = new Timers(clock, (err) => logger.error({ err: (err as Error).message }, 'housekeeping failed'));
  timers.every(SWEEP_INTERVAL_MS, () => manager.tick());
  let running = config;
  const reload = (): boolean => {
    // Certificates renewed on disk take effect for new connections; open ones keep theirs.
    if (tls?.reload()) metricsServer?.setTls(tls.pem);
    const file = options.configFile;
    if (!file) return false;
    try {
      const loaded = loadConfigFile(file).config;
      const next = options.overrides ? options.overrides(loaded) : loaded;
      if (JSON.stringify(next.reservations.store) !== JSON.stringify(running.reservations.store)) {
        throw new Error('changing reservations.store needs a restart; the running config is kept');
      }
      if (JSON.stringify(next.cluster) !== JSON.stringify(running.cluster)) {
        throw new Error('changing cluster needs a restart; the running config is kept');
      }
      // A class made weak: its flights can wait in the spool at shutdown from now on.
      const spoolDir = spool ? undefined : spoolDirectory(next);
      if (spoolDir) {
        locks.push(...lockDirectories([{ dir: spoolDir, what: 'spool' }]));
        spool = new FilesystemStore('spool', spoolDir);
        manager.useSpool(spool);
      }
      manager.reconfigure(next, running);
      coordination.reconfigure(next.reservations);
      authenticator.current = authenticatorFor(next);
      running = next;
      metrics.configReloaded('applied');
      return true;
    } catch (err) {
      // A bad file never replaces a good config: log why, count it, keep serving.
      metrics.configReloaded(err instanceof ConfigError ? 'invalid' : 'refused');
      logger.error({ config: file, err: (err as Error).message }, 'config reload failed; the running config is kept');
      return false;
    }
  };
  const watcher = options.configFile ? watchFile(options.configFile, reload, logger) : undefined;
  return {
    manager,
    reservations: coordination,
    flight: flight as FlightServer,
    metrics,
    metricsServer,
    cluster,
    get spool() {
      return spool?.root;
    },
    reload,
    stop: async () => {
      ready = false;
      timers.stop();
      watcher?.close();
      // Jobs stop first (the items running finish), so a client following one gets its
      // last progress, "stopped" with the checkpoint to resume from, before calls drain.
      const jobsStopped = jobs.close();
      await flight.stop(config.server.shutdownGrace);
      await jobsStopped;
      await handover?.stop();
      cluster?.stop();
      nodeCredential?.stop();
      // Weak uploads still queued get the same grace to reach the store; then flights of a
      // durable class still without a copy are spooled for the next start.
      await manager.close(config.server.shutdownGrace);
      await coordination.close();
      await metricsServer?.stop();
      for (const lock of locks) lock.release();
      logger.info('stopped');
    },
  };
}
