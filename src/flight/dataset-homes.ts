import type { Metadata } from '@grpc/grpc-js';
import type { Logger } from '../core/log.js';
import { systemClock, type Clock } from '../core/clock.js';
import { retry } from '../core/retry.js';
import { isTierflightError } from '../errors.js';
import { partitionOf, partitionPath, type FlightPath } from '../core/path.js';
import type { Datasets, LandedPartition, PartitionStore } from '../datasets/datasets.js';
import type { StorageManager } from '../storage/manager.js';
import type { FlightVersion } from '../storage/flight.js';
import { forwardedHeaders, fromNode, type ClusterMember, type ClusterPort, type ReadMessage } from './cluster-port.js';
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
  | { op: 'pin'; paths: string[]; pinned: boolean }
  /** To a dataset's home: partitions this member holds (after the home started, or placement moved). */
  | ({ op: 'held' } & HeldPartitions)
  /** To a member just seen up: report to `to` the partitions it holds of the datasets `to` is the home of. */
  | { op: 'report'; to: string };

/** The partitions a member holds, as it reports them to their datasets' home. */
export interface HeldPartitions {
  /** Each with its schema message (base64): the home's FlightInfo carries the dataset's schema. */
  partitions: ({ path: string; schema: string } & LandedPartition)[];
}

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
    private readonly clock: Clock = systemClock,
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
    // Cheapest first: outside a cluster, or at the home, nothing more is looked at.
    const home = fromNode(call) ? undefined : this.homeElsewhere(path);
    if (!home || this.manager.has(path) || this.datasets.has(path)) return undefined;
    return this.cluster.flightInfo(home, path.split('/'), forwardedHeaders(this.cluster, call));
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

  /**
   * Tells datasets' homes which of their partitions this node holds (a home keeps its
   * datasets' generations in memory, and finds them again from these reports): to `to`
   * (a member just seen up: it started, or came back, and may be the home of datasets whose
   * partitions are here), or to every home (a member went down, and the datasets it was home
   * for have new homes). Datasets this node is no longer the home of are forgotten first,
   * and those it is the home of are found again from its own partitions.
   */
  async report(to?: ClusterMember): Promise<void> {
    const isHome = (dataset: FlightPath) => !this.homeElsewhere(dataset);
    this.datasets.forget(isHome);
    const byHome = new Map<string, { member: ClusterMember; partitions: HeldPartitions['partitions'] }>();
    const here: HeldPartitions['partitions'] = [];
    for (const version of this.manager.partitionsUnder('')) {
      const dataset = partitionOf(version.path)?.dataset;
      if (!dataset) continue;
      const home = this.homeElsewhere(dataset);
      const held = {
        path: version.path,
        schema: (version.schemaHeader as Buffer | undefined)?.toString('base64') ?? '',
        ...factsOf(version),
        node: this.cluster.self,
      };
      if (!home) here.push(held);
      else if (!to || home.name === to.name) {
        const group = byHome.get(home.name) ?? { member: home, partitions: [] };
        group.partitions.push(held);
        byHome.set(home.name, group);
      }
    }
    await this.received(here);
    await Promise.all(
      [...byHome.values()].map(({ member, partitions }) =>
        // A member still starting answers UNAVAILABLE for a few seconds: told again.
        retry(() => this.tell(member, { op: 'held', partitions }), {
          clock: this.clock,
          attempts: 8,
          retryable: (err) => isTierflightError(err) && err.code === 'UNAVAILABLE',
        }),
      ),
    );
  }

  /**
   * A member was seen up: what this node holds of that member's datasets goes to it, and it
   * is asked for what it holds of this node's (it may not have seen this node come back, if
   * this node restarted before it was marked down).
   */
  async memberUp(member: ClusterMember, log: Logger): Promise<void> {
    this.tell(member, { op: 'report', to: this.cluster.self }).catch((err: unknown) =>
      log.warn({ member: member.name, err: (err as Error).message }, 'could not ask a member for its partitions'),
    );
    await this.report(member);
  }

  /** Partitions a member holds (its report): those of datasets this node is the home of are merged in. */
  async received(partitions: HeldPartitions['partitions']): Promise<void> {
    const found = new Map<FlightPath, { path: FlightPath; landed: LandedPartition; schema?: Buffer }[]>();
    for (const { path, schema, ...landed } of partitions) {
      const partition = partitionOf(path);
      if (!partition || this.homeElsewhere(partition.dataset)) continue;
      const list = found.get(partition.dataset) ?? [];
      list.push({ path: path as FlightPath, landed, ...(schema ? { schema: Buffer.from(schema, 'base64') } : {}) });
      found.set(partition.dataset, list);
    }
    for (const [dataset, list] of found) {
      this.datasets.recover(dataset, list);
      if (this.manager.route(dataset).config.durability !== 'none') await this.fromStore(dataset);
    }
  }

  /**
   * The partitions of a durable dataset that no member reported (the member that held them
   * went: a new home is finding the dataset again) are looked up in its durable store, and
   * merged in when there; their new owners restore them on first read.
   */
  private async fromStore(dataset: FlightPath): Promise<void> {
    const found: { path: FlightPath; landed: LandedPartition; schema?: Buffer }[] = [];
    for (const path of this.datasets.missing(dataset) ?? []) {
      try {
        if (!this.manager.has(path) && !(await this.manager.adoptFromStore(path))) continue;
        await this.manager.materialize(path);
        const version = this.manager.lookup(path);
        found.push({ path, landed: factsOf(version), schema: version.schemaHeader });
      } catch {
        // Not in the store either: the generation stays incomplete (NOT_FOUND naming it).
      }
    }
    if (found.length > 0) this.datasets.recover(dataset, found);
  }

  private tell(to: ClusterMember, message: DatasetMessage): Promise<Buffer[]> {
    // Sent as the node itself (its credential): the writer's access was checked where it put.
    return this.cluster.action(to, CLUSTER_DATASET_VERB, Buffer.from(JSON.stringify(message)), {});
  }
}

/** What a home keeps of a stored partition: its version, records and bytes. */
export function factsOf(version: Pick<FlightVersion, 'tag' | 'totalRecords' | 'totalBytes'>): LandedPartition {
  return { tag: version.tag, records: version.totalRecords, bytes: version.totalBytes };
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
