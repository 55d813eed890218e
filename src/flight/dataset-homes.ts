import type { Metadata } from '@grpc/grpc-js';
import type { Logger } from '../core/log.js';
import { partitionOf, partitionPath, type FlightPath } from '../core/path.js';
import type { Datasets, LandedPartition, PartitionStore } from '../datasets/datasets.js';
import type { StorageManager } from '../storage/manager.js';
import { forwardedHeaders, type ClusterMember, type ClusterPort, type ReadMessage } from './cluster-port.js';
import { fromNode } from './owners.js';
import type { PbFlightInfo } from './proto.js';

/** The node-to-node verb a dataset's home and its partitions' owners talk through. */
export const CLUSTER_DATASET_VERB = 'cluster-dataset';

/** What a partition's owner and a dataset's home tell each other (`cluster-dataset` bodies). */
export type DatasetMessage =
  /** To the home: which generation a put of partition `index` of `count` belongs to (its schema checked). */
  | { op: 'begin'; dataset: string; index: number; count: number; schema: string }
  /** To the home: the partition landed on `node` (its version, records and bytes). */
  | ({ op: 'landed'; dataset: string; generation: number; index: number; count: number } & LandedPartition)
  /** To the home: a partition was evicted or expired on its owner. */
  | { op: 'lost'; path: string; reason: string }
  /** To every member: remove these partitions where they are held. */
  | { op: 'remove'; paths: string[] }
  /** To a partition's owner: pin or unpin it. */
  | { op: 'pin'; paths: string[]; pinned: boolean };

/**
 * Partitioned datasets across a cluster (DESIGN §9). Each dataset has a home, the primary
 * owner of its path: the home keeps its generations (which partitions landed where, which
 * generation is visible) and answers its reads. Each partition is stored on the owners of
 * `<dataset>#<i>` (core/path.ts `placementKey`), so the partitions of a dataset spread over
 * the members: a put of partition i goes to its owner, which asks the home which generation it
 * belongs to before storing it and tells the home when it has landed. Outside a cluster
 * (SOLO_NODE) the home and every partition's owner are this node and nothing is called.
 */
export class DatasetHomes {
  constructor(
    private readonly cluster: ClusterPort,
    private readonly datasets: Datasets,
    private readonly manager: StorageManager,
  ) {}

  /** The dataset's home when it is another live member, else undefined (this node). */
  homeElsewhere(dataset: FlightPath): ClusterMember | undefined {
    if (this.cluster.peers().length === 0) return undefined;
    const home = this.cluster.owners(dataset, 1)[0];
    return home && !home.self ? home : undefined;
  }

  /** The owner of partition `index` when it is another member and the put came from a client (forward it there). */
  partitionOwnerElsewhere(call: { metadata: Metadata }, dataset: FlightPath, index: number): ClusterMember | undefined {
    if (fromNode(call) || this.cluster.peers().length === 0) return undefined;
    const to = this.cluster.owners(partitionPath(dataset, 0, index, index + 1), 1)[0];
    return to && !to.self ? to : undefined;
  }

  /** The generation a put of partition `index` of `count` belongs to, its schema checked against the generation's (at the home). */
  async begin(dataset: FlightPath, index: number, count: number, schema: Buffer): Promise<number> {
    const home = this.homeElsewhere(dataset);
    if (!home) return beginHere(this.datasets, dataset, index, count, schema);
    const message: DatasetMessage = { op: 'begin', dataset, index, count, schema: schema.toString('base64') };
    const [answer] = await this.tell(home, message);
    return (JSON.parse(answer?.toString() ?? '{}') as { generation: number }).generation;
  }

  /**
   * GetFlightInfo (or GetSchema) of a path this node answers for but holds nothing at, when
   * the path's dataset home is another member — this node is a second owner of the path (a
   * class with `replicas`), and only the home knows the dataset: the home's answer. Undefined:
   * answer here.
   */
  infoAtHome(call: { metadata: Metadata }, path: FlightPath): Promise<PbFlightInfo> | undefined {
    if (fromNode(call) || this.datasets.has(path) || this.manager.has(path)) return undefined;
    const home = this.homeElsewhere(path);
    return home && this.cluster.flightInfo(home, path.split('/'), forwardedHeaders(this.cluster, call));
  }

  /** Partition `index` of generation `generation` landed here: the home counts it (the dataset shows once all have). */
  async landed(
    dataset: FlightPath,
    generation: number,
    index: number,
    count: number,
    partition: LandedPartition,
  ): Promise<void> {
    const landed = { ...partition, node: this.cluster.self };
    const home = this.homeElsewhere(dataset);
    if (!home) {
      this.datasets.landed(this.datasets.generation(dataset, generation, count), index, landed);
      return;
    }
    await this.tell(home, { op: 'landed', dataset, generation, index, count, ...landed });
  }

  /**
   * A stored flight left this node's catalog (the landing hook). A partition evicted or
   * expired loses its dataset: told to the home, where the dataset is dropped whole.
   */
  retired(path: FlightPath, reason: string, log: Logger): void {
    const partition = partitionOf(path);
    const home = partition && (reason === 'evict' || reason === 'expire') && this.homeElsewhere(partition.dataset);
    if (!home) {
      this.datasets.retired(path, reason);
      return;
    }
    this.tell(home, { op: 'lost', path, reason }).catch((err: unknown) =>
      log.warn(
        { path, home: home.name, err: (err as Error).message },
        'could not tell a dataset home of a lost partition',
      ),
    );
  }

  /**
   * Where a partition is read when this node does not hold it and is not among its owners:
   * its owners (another node's read is proxied there); undefined to read it here.
   */
  heldElsewhere(path: FlightPath): ClusterMember[] | undefined {
    if (this.manager.has(path) || this.cluster.peers().length === 0) return undefined;
    const owners = this.cluster.owners(path, this.manager.route(path).config.replicas);
    return owners.length === 0 || owners.some((o) => o.self) ? undefined : owners;
  }

  /**
   * A DoGet of another node's partition, read there and passed on: from the first of its
   * owners that answers (the call's user travels with it, so the owner checks its access).
   */
  async *readElsewhere(
    call: { metadata: Metadata },
    owners: ClusterMember[],
    ticket: Buffer,
  ): AsyncIterable<ReadMessage> {
    const headers = forwardedHeaders(this.cluster, call);
    let failure: unknown;
    for (const owner of owners) {
      let started = false;
      try {
        for await (const m of this.cluster.readFlight(owner, ticket, headers)) {
          started = true;
          yield m;
        }
        return;
      } catch (err) {
        // Once messages have gone to the client, another owner cannot take over mid-stream.
        if (started) throw err;
        failure = err;
      }
    }
    throw failure;
  }

  private tell(to: ClusterMember, message: DatasetMessage): Promise<Buffer[]> {
    // Sent as the node itself (its credential): the writer's access was checked where it put.
    return this.cluster.action(to, CLUSTER_DATASET_VERB, Buffer.from(JSON.stringify(message)), {});
  }
}

/** At the home: the generation a partition put belongs to, its schema checked. */
export function beginHere(
  datasets: Datasets,
  dataset: FlightPath,
  index: number,
  count: number,
  schema: Buffer,
): number {
  const generation = datasets.begin(dataset, index, count);
  datasets.checkSchema(generation, index, schema);
  return generation.number;
}

/**
 * Where a node's datasets' partitions are stored (the storage manager), and in a cluster
 * removed and pinned wherever they are held: a removal goes to every other member too (a
 * partition may have moved with placement), a pin to the partition's owner.
 */
export function partitionStore(
  manager: StorageManager,
  cluster: () => ClusterPort,
  log: Logger,
  graceMs: number,
): PartitionStore {
  const tell = (to: ClusterMember, message: DatasetMessage) =>
    cluster().action(to, CLUSTER_DATASET_VERB, Buffer.from(JSON.stringify(message)), {});
  return {
    stored: (dataset) => manager.storedPartitions(dataset),
    remove: (paths) => {
      for (const path of paths) manager.delete(path);
      for (const peer of cluster().peers()) {
        tell(peer, { op: 'remove', paths }).catch((err: unknown) =>
          log.warn(
            { member: peer.name, partitions: paths.length, err: (err as Error).message },
            'could not remove partitions on a member',
          ),
        );
      }
    },
    pin: async (path, pinned) => {
      const owner = cluster().owners(path, 1)[0];
      if (manager.has(path) || !owner || owner.self) await pinHere(manager, path, pinned);
      else await tell(owner, { op: 'pin', paths: [path], pinned });
    },
    graceMs,
  };
}

/** Pins or unpins a partition held here (restored first when it is durable and not in a tier). */
export async function pinHere(manager: StorageManager, path: FlightPath, pinned: boolean): Promise<void> {
  await manager.materialize(path);
  if (pinned) manager.pin(path);
  else manager.unpin(path);
}
