import type { Metadata, ServerDuplexStream } from '@grpc/grpc-js';
import type { Logger } from '../core/log.js';
import { CancelledError, InvalidArgumentError, isTierflightError, NotFoundError, RETRY_OTHER } from '../errors.js';
import { flightPath, type FlightPath } from '../core/path.js';
import type { StorageManager } from '../storage/manager.js';
import type { FlightVersion } from '../storage/flight.js';
import type { ActionVerb } from './actions/registry.js';
import {
  forwardedHeaders,
  fromNode,
  updatedAtOf,
  type ClusterMember,
  type ClusterPort,
  type ForwardedMessage,
} from './cluster-port.js';
import { isDecodeError, type DecodedFlightData, type FlightDataFrame } from './flight-data-codec.js';
import type { PbFlightInfo, PbPollInfo } from './proto.js';
import { withBodyOf } from '../ipc/frame.js';

/** A call as routing sees it: its headers (who sent it, and on whose behalf). */
type Call = { metadata: Metadata };

/**
 * Routes calls to the owners of their paths (DESIGN §8), in one place, so the RPC handlers
 * stay purely local: each asks this wrapper, which answers "here" or calls the owner and
 * returns its answer. It picks owners through the ClusterPort; outside a cluster that port
 * is `SOLO_NODE`, whose only owner of every path is this node, so one node runs the same
 * handlers as a cluster member and every call is answered here. A call from another node is
 * always answered here (the sender already routed it).
 */
export class Owners {
  constructor(
    readonly cluster: ClusterPort,
    private readonly manager: StorageManager,
    private readonly log: Logger,
  ) {}

  /** The path's primary owner when it is another node and the call came from a client, else undefined (answer here). */
  primaryElsewhere(call: Call, path: FlightPath): ClusterMember | undefined {
    if (fromNode(call) || this.cluster.peers().length === 0) return undefined;
    const to = this.cluster.owners(path, this.replicasOf(path))[0];
    return to && !to.self ? to : undefined;
  }

  /**
   * Streams a DoPut on to the path's primary owner as it arrives (the next message is read
   * once the last is sent, so a slow owner slows the client) and its acks back; the owner
   * validates, stores and answers, and its status is this call's. A client that goes away cancels it.
   */
  async forwardPut(
    call: ServerDuplexStream<DecodedFlightData, Buffer>,
    to: ClusterMember,
    first: FlightDataFrame,
    rest: AsyncIterator<DecodedFlightData>,
  ): Promise<void> {
    async function* messages(): AsyncGenerator<ForwardedMessage> {
      yield first;
      for (let index = 1; ; index++) {
        const next = await rest.next();
        // Ending the owner's stream commits the flight: never for a client that left mid-put.
        if (call.cancelled) throw new CancelledError('the client cancelled the put');
        if (next.done) return;
        const m = next.value;
        if (isDecodeError(m)) throw new InvalidArgumentError(`message ${index}: ${m.decodeError}`);
        // Sent on as it came (no re-encoding) when it holds nothing but header, metadata and body.
        yield withBodyOf(
          { header: m.header, appMetadata: m.appMetadata, ...(m.replayable ? { wire: m.wire } : {}) },
          m,
        );
      }
    }
    const headers = forwardedHeaders(this.cluster, call);
    await this.cluster.forwardPut(to, first.descriptor?.path ?? [], headers, messages(), (ack) => call.write(ack));
  }

  /**
   * After a put lands on the path's primary owner: the other owners (`replicas` of the
   * class) get a copy of a non-durable flight, streamed from the stored one in the
   * background (the client has its answer already); a durable one they restore from the
   * store on first read instead. A replica that cannot take it is logged (and counted with
   * the cluster calls), and the flight stays on the primary.
   */
  replicate(version: FlightVersion): void {
    const { path, tag } = version;
    const { replicas, durability } = version.cls.config;
    if (replicas <= 1 || durability !== 'none') return;
    const owners = this.cluster.owners(path, replicas);
    if (!owners[0]?.self) return;
    for (const to of owners.slice(1)) {
      this.cluster.copyFlight(to, path, tag).then(
        () => this.log.debug({ path, replica: to.name }, 'replica copied'),
        (err: unknown) =>
          this.log.warn(
            { path, replica: to.name, err: (err as Error).message },
            'could not copy a flight to a replica',
          ),
      );
    }
  }

  /**
   * Before a read of a flight this node does not hold: restored from the durable store when
   * another member may have put it there, else NOT_FOUND naming the path's owners, where the
   * client should read. Nothing to do for a flight held here, or one this node owns.
   */
  async readHere(path: FlightPath): Promise<void> {
    if (this.manager.has(path) || !this.othersMayWrite()) return;
    if (await this.manager.adoptFromStore(path)) return;
    const owners = this.cluster.owners(path, this.replicasOf(path)).filter((o) => !o.self);
    if (owners.length === 0) return; // this node owns it: the usual NOT_FOUND follows
    throw new NotFoundError(
      `flight "${path}" is not held by ${this.cluster.self}; read it from its owner ${owners.map((o) => `${o.name} (${o.location})`).join(', ')}`,
      RETRY_OTHER,
    );
  }

  /**
   * A FlightInfo (or the schema in one) from the path's primary owner when this node is not
   * one of its owners; else `local()`, once what the durable store holds for the path is
   * here (another owner may have put it, or this node took it over from a member that left).
   * When the owner cannot be reached (down, not yet marked so), this node's own answer if it
   * has the flight (a durable one it can restore), else the owner's error.
   */
  async info<T>(
    call: Call,
    path: FlightPath,
    local: () => Promise<T>,
    fromOwner: (info: PbFlightInfo) => T,
  ): Promise<T> {
    const to = await this.answeredBy(call, path);
    if (!to) return local();
    try {
      return fromOwner(await this.cluster.flightInfo(to, path.split('/'), forwardedHeaders(this.cluster, call)));
    } catch (err) {
      if (isTierflightError(err) && err.code === 'UNAVAILABLE') {
        if (!this.manager.has(path)) await this.manager.adoptFromStore(path).catch(() => false);
        return local().catch(() => {
          throw err;
        });
      }
      throw err;
    }
  }

  /** PollFlightInfo: the owner answers (the put lands there and the wait happens there), else `local()`. */
  async poll(call: Call, path: FlightPath, local: () => Promise<PbPollInfo>): Promise<PbPollInfo> {
    const to = await this.answeredBy(call, path);
    if (!to) return local();
    return this.cluster.pollFlightInfo(to, path.split('/'), forwardedHeaders(this.cluster, call));
  }

  /**
   * ListFlights: this node's flights (`local`, already filtered for the caller), and for a
   * client's call every other live member's too (each filters by the same caller), one per
   * path, the most recently written. Outside a cluster, `local` streams as it is.
   */
  async *list(call: Call, prefix: string, local: () => AsyncIterable<PbFlightInfo>): AsyncIterable<PbFlightInfo> {
    const peers = fromNode(call) ? [] : this.cluster.peers();
    if (peers.length === 0) {
      yield* local();
      return;
    }
    const mine: PbFlightInfo[] = [];
    for await (const info of local()) mine.push(info);
    const headers = forwardedHeaders(this.cluster, call);
    const answers = await Promise.all(
      peers.map((peer) =>
        this.cluster.listFlights(peer, prefix, headers).catch((err: unknown) => {
          this.log.warn({ member: peer.name, err: (err as Error).message }, 'ListFlights: a member did not answer');
          return [];
        }),
      ),
    );
    yield* newestPerPath([mine, ...answers]);
  }

  /**
   * A DoAction verb, routed: with reservations in each node's memory (a `--workers` local
   * cluster), a reservation verb runs on its path's primary owner, where the path's puts land
   * and its waits are answered; a cluster-wide verb (delete, delete-prefix, pin) runs here and
   * on every other live member, its results joined (it fails only when every member failed,
   * with this node's error); anything else runs here (`local`).
   */
  async *action(
    call: Call & { request: { type: string; body: Buffer } },
    verb: ActionVerb | undefined,
    memoryReservations: boolean,
    local: () => AsyncIterable<Buffer>,
  ): AsyncIterable<Buffer> {
    const { type, body } = call.request;
    const client = !fromNode(call);
    if (client && verb?.atOwner && verb.target && memoryReservations) {
      const path = flightPath(verb.target(body));
      const owner = this.primaryElsewhere(call, path);
      if (owner) {
        yield* await this.cluster.action(owner, type, body, forwardedHeaders(this.cluster, call));
        return;
      }
    }
    if (client && verb?.askOwnersOnNotFound && verb.target) {
      yield* await this.hereOrOtherOwners(call, flightPath(verb.target(body)), local);
      return;
    }
    if (!verb?.clusterWide) {
      yield* local();
      return;
    }
    const headers = forwardedHeaders(this.cluster, call);
    const here = (async () => {
      const out: Buffer[] = [];
      for await (const result of local()) out.push(result);
      return out;
    })();
    const remote = (client ? this.cluster.peers() : []).map((peer) =>
      this.cluster.action(peer, type, body, headers).catch((err: unknown) => {
        // A member without the flight says NOT_FOUND: nothing to report.
        if (!isTierflightError(err) || err.code !== 'NOT_FOUND')
          this.log.warn(
            { member: peer.name, action: type, err: (err as Error).message },
            'a member did not run the action',
          );
        throw err;
      }),
    );
    const settled = await Promise.allSettled([here, ...remote]);
    const results = settled
      .filter((s): s is PromiseFulfilledResult<Buffer[]> => s.status === 'fulfilled')
      .flatMap((s) => s.value.slice(0, 1));
    if (results.length === 0) throw (settled[0] as PromiseRejectedResult).reason;
    yield verb.clusterWide(results);
  }

  /** A verb's results here; on NOT_FOUND, the first answer of the path's other owners (else this node's error). */
  private async hereOrOtherOwners(
    call: Call & { request: { type: string; body: Buffer } },
    path: FlightPath,
    local: () => AsyncIterable<Buffer>,
  ): Promise<Buffer[]> {
    try {
      const out: Buffer[] = [];
      for await (const result of local()) out.push(result);
      return out;
    } catch (err) {
      if (!isTierflightError(err) || err.code !== 'NOT_FOUND') throw err;
      const others = this.cluster.owners(path, this.replicasOf(path)).filter((o) => !o.self);
      const headers = forwardedHeaders(this.cluster, call);
      for (const owner of others) {
        const answer = await this.cluster.action(owner, call.request.type, call.request.body, headers).catch(() => []);
        if (answer.length > 0) return answer;
      }
      throw err;
    }
  }

  /**
   * Where an endpoint of a flight this node answers for can be read: this node (`self`, its
   * advertised location, none for "this server"), and the path's other owners (a replica
   * holds a copy, or restores a durable one on first read). An owner names the owners in
   * placement order (the primary first); another node that answers for a flight it holds
   * names itself first.
   */
  locations(version: FlightVersion, self: string | undefined): string[] {
    const owners = this.cluster.owners(version.path, version.cls.config.replicas);
    if (owners.some((o) => o.self)) return owners.flatMap((o) => (o.self ? (self ? [self] : []) : [o.location]));
    return [...new Set([...(self ? [self] : []), ...owners.map((o) => o.location)])];
  }

  /** The member a metadata call is answered by (undefined: here, once the durable store's copy is adopted). */
  private async answeredBy(call: Call, path: FlightPath): Promise<ClusterMember | undefined> {
    // Outside a cluster (or with every other member down) this node is the only owner.
    const owners =
      fromNode(call) || this.cluster.peers().length === 0 ? [] : this.cluster.owners(path, this.replicasOf(path));
    const to = owners[0];
    if (to && !owners.some((o) => o.self)) return to;
    if (!this.manager.has(path) && this.othersMayWrite()) await this.manager.adoptFromStore(path);
    return undefined;
  }

  /** How many owners the path's class gives it (`replicas`); asked only when there are other members. */
  private replicasOf(path: FlightPath): number {
    return this.manager.route(path).config.replicas;
  }

  /** Whether another member may have put a durable flight this node has not seen (there are other members). */
  private othersMayWrite(): boolean {
    return this.cluster.members().length > 1;
  }
}

/** One FlightInfo per path from several members' lists: the most recently written version. */
function newestPerPath(lists: PbFlightInfo[][]): PbFlightInfo[] {
  const best = new Map<string, { info: PbFlightInfo; at: number }>();
  for (const list of lists) {
    for (const info of list) {
      const key = info.flight_descriptor.path.join('/');
      const at = updatedAtOf(info);
      const seen = best.get(key);
      if (!seen || at > seen.at) best.set(key, { info, at });
    }
  }
  return [...best.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, v]) => v.info);
}
