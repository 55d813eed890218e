import { readFileSync } from 'node:fs';
import type { Config } from '../config/schema.js';
import type { Clock } from '../core/clock.js';
import { flightPath } from '../core/path.js';
import type { Logger } from '../core/log.js';
import { noAuthentication, SwitchableAuthenticator, type Authenticator } from '../auth/authenticator.js';
import { denialReporter } from '../auth/denials.js';
import { NodeCredential } from '../auth/node-credential.js';
import { UsersAuthenticator } from '../auth/users.js';
import type { FlightClientOptions } from '../client/flight-client.js';
import { ClusterNode } from '../cluster/cluster-node.js';
import { Reservations } from '../coordination/index.js';
import { Datasets } from '../datasets/datasets.js';
import type { ReservationStore } from '../coordination/reservation-store.js';
import type { DurableStore } from '../durable/durable-store.js';
import type { FilesystemStore } from '../durable/filesystem-store.js';
import type { FlightServerOptions } from '../flight/server.js';
import { DatasetHomes, partitionStore } from '../flight/dataset-homes.js';
import { SOLO_NODE } from '../flight/cluster-port.js';
import type { TlsFiles } from '../flight/tls.js';
import { JobRunner } from '../jobs/runner.js';
import { NO_MEMBERS, registerClusterGauges } from '../metrics/cluster-metrics.js';
import { registerCoordinationMetrics } from '../metrics/coordination-metrics.js';
import { registerJobGauges } from '../metrics/job-metrics.js';
import { registerStorageGauges } from '../metrics/storage-gauges.js';
import type { TierflightMetrics } from '../metrics/tierflight-metrics.js';
import { StorageManager } from '../storage/manager.js';

/** What a node is built from that had to be opened first (stores answer, or say why not). */
export interface Opened {
  tls: TlsFiles | undefined;
  durableStores: ReadonlyMap<string, DurableStore>;
  spool: FilesystemStore | undefined;
  reservationStore: ReservationStore;
}

/** The parts of one node, built and wired, none of them started. */
export interface NodeParts {
  metrics: TierflightMetrics;
  tls: TlsFiles | undefined;
  /** Who each call is; a reload swaps the users inside. */
  authenticator: SwitchableAuthenticator;
  authenticatorFor: (config: Config) => Authenticator;
  reservations: Reservations;
  manager: StorageManager;
  datasets: Datasets;
  jobs: JobRunner;
  /** With auth in a cluster: the token this node calls the others with. */
  credential: NodeCredential | undefined;
  cluster: ClusterNode | undefined;
  /** How the Flight server is started with these parts (but `ready`, which the lifecycle owns). */
  flightOptions: Omit<FlightServerOptions, 'ready'>;
}

/**
 * The composition of one node: every part built from the config and the parts below it,
 * in dependency order, each given what it reports to (metrics) and what it calls through
 * its constructor. Nothing here starts, listens or opens a store: `start.ts` does that.
 */
export function composeNode(
  config: Config,
  logger: Logger,
  clock: Clock,
  metrics: TierflightMetrics,
  opened: Opened,
  validateIpc?: boolean,
): NodeParts {
  const { tls } = opened;
  const authenticatorFor = (c: Config): Authenticator =>
    c.auth ? new UsersAuthenticator(c.auth, logger, metrics.authFailed) : noAuthentication;
  const authenticator = new SwitchableAuthenticator(authenticatorFor(config));

  // Reservations are the storage's landing hook; they read what has landed here, or what
  // another node put in the shared store, through the manager built next.
  const landingHost = {
    has: (path: string) => manager.has(flightPath(path)),
    adopt: (path: string) => manager.adoptFromStore(flightPath(path)),
  };
  const reservations = new Reservations(opened.reservationStore, config.reservations, clock, logger, landingHost);
  const manager: StorageManager = new StorageManager({
    config,
    clock,
    logger,
    durableStores: opened.durableStores,
    ...(opened.spool ? { spool: opened.spool } : {}),
    // Told when a flight lands (its waiters answer, its reservation goes) or leaves (a
    // dataset that loses a partition is dropped whole).
    landing: {
      landed: (version, copied) => reservations.landed(version, copied),
      durable: (version) => reservations.durable(version),
      retired: (version, reason) => homes.retired(version.path, reason, logger),
    },
  });
  manager.events.subscribe(metrics.observe);
  const jobs = new JobRunner(clock, logger, metrics.jobItem);
  // A dataset's generations are kept at its home; in a cluster its partitions are removed
  // and pinned wherever they are held (the cluster is built below).
  const datasets: Datasets = new Datasets(
    clock,
    partitionStore(manager, () => cluster ?? SOLO_NODE, logger, config.server.ticketGrace),
    (loss) => {
      metrics.datasetLost(loss.reason);
      logger.warn({ ...loss }, 'a dataset lost a partition: dropped whole (recompute it)');
    },
    !config.cluster,
  );

  // With auth, node-to-node calls carry this node's credential (signed with the shared secret).
  const credential = config.cluster && config.auth ? new NodeCredential(config.auth, config.cluster.self) : undefined;
  const cluster = config.cluster
    ? new ClusterNode(config.cluster, clock, logger, {
        manager,
        client: nodeClientOptions(config),
        ...(credential ? { nodeHeaders: () => credential.headers() } : {}),
        observe: metrics.cluster.call,
      })
    : undefined;

  const homes = new DatasetHomes(cluster ?? SOLO_NODE, datasets, manager, clock);
  // A member that goes down takes the partitions it held: their datasets are lost, unless
  // their class keeps them durably (restored from the store) or on more than one member.
  // Homes keep their datasets' generations in memory: a member seen up (this node started,
  // or it came back) is told which partitions of its datasets are here, and when a member
  // goes down every home is (the datasets it was home for have new homes).
  const told = (telling: Promise<void>) =>
    telling.catch((err: unknown) =>
      logger.warn({ err: (err as Error).message }, "could not tell datasets' homes of their partitions"),
    );
  cluster?.onMemberDown((name) => {
    datasets.memberLost(name, (dataset) => {
      const cls = manager.route(dataset).config;
      return cls.durability !== 'none' || cls.replicas > 1;
    });
    void told(homes.report());
  });
  cluster?.onMemberUp((member) => void told(homes.memberUp(member, logger)));

  registerStorageGauges(metrics.registry, manager);
  registerCoordinationMetrics(metrics.registry, reservations);
  registerJobGauges(metrics.registry, jobs);
  registerClusterGauges(metrics.registry, cluster?.membership ?? NO_MEMBERS);

  const flightOptions: Omit<FlightServerOptions, 'ready'> = {
    ...(cluster ? { cluster } : {}),
    ...(cluster?.location && config.server.advertise === undefined ? { advertise: cluster.location } : {}),
    observeRpc: metrics.observeRpc,
    reservations,
    datasets,
    homes,
    jobs,
    authenticator,
    denied: denialReporter(logger, () => metrics.authFailed('permission_denied')),
    ...(tls ? { credentials: tls.credentials() } : {}),
    ...(validateIpc === undefined ? {} : { validateIpc }),
  };
  return {
    metrics,
    tls,
    authenticator,
    authenticatorFor,
    reservations,
    manager,
    datasets,
    jobs,
    credential,
    cluster,
    flightOptions,
  };
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
