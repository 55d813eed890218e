import { inSpan, SpanKind, withTraceContext } from '../core/trace.js';
import { placementKey, type FlightPath } from '../core/path.js';
import {
  FlightCallError,
  FlightClient,
  FlightStatus,
  statusName,
  type FlightClientOptions,
} from '../client/flight-client.js';
import { errorCodeOf } from '../flight/status.js';
import type { ClusterConfig } from '../config/schema.js';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/log.js';
import { retryDelay, TierflightError, withoutRetryWords } from '../errors.js';
import type { ClusterMember, ClusterPort, ForwardedMessage, ReadMessage } from '../flight/cluster-port.js';
import { DEFAULT_POLL_WAIT_MS, FROM_NODE_HEADER, VERSION_HEADER } from '../flight/cluster-port.js';
import type { PbFlightInfo, PbPollInfo } from '../flight/proto.js';
import { Membership, type Lookup, type Member } from './membership.js';
import { owners } from './placement.js';
import { withBodyOf } from '../ipc/frame.js';
import type { StorageManager } from '../storage/manager.js';

const EMPTY = Buffer.alloc(0);
/** A member that does not answer a call in this long fails it (DEADLINE_EXCEEDED: treated as unreachable). */
const CALL_TIMEOUT_MS = 5_000;
/** A member's whole list of flights can take longer. */
const LIST_TIMEOUT_MS = 30_000;
/** Tries of a read a member answered with "UNAVAILABLE, retry here", and the longest wait it may ask for between them. */
const NODE_RETRY_ATTEMPTS = 3;
const NODE_RETRY_WAIT_MS = 2_000;
/** Connections to members ping this often; one that does not answer fails the calls open on it (a paused node). */
const KEEPALIVE_MS = 10_000;

export interface ClusterNodeOptions {
  /** How this node reaches the others: TLS files when the cluster runs TLS. */
  client?: FlightClientOptions;
  /** Headers every node-to-node call carries (a node credential). */
  nodeHeaders?: () => Record<string, string>;
  /** Where flights are copied from (replicas, handover). */
  manager?: StorageManager;
  /** Hears each call to another member: its method and outcome (OK or the status name). */
  observe?: (method: string, outcome: string) => void;
  lookup?: Lookup;
}

/**
 * This node's part in a cluster (DESIGN §8): the members and their liveness, where each path
 * lives (rendezvous hashing over the live members), and the Flight calls it makes to the
 * others, one client per member. Implements the port the Flight service uses.
 */
export class ClusterNode implements ClusterPort {
  readonly membership: Membership;
  private readonly clients = new Map<string, { location: string; client: FlightClient }>();
  private readonly resyncs = new Set<() => void>();

  constructor(
    config: ClusterConfig,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly options: ClusterNodeOptions = {},
  ) {
    const scheme = options.client?.tls ? 'grpc+tls' : 'grpc+tcp';
    const probe = (m: Member, timeoutMs: number) =>
      this.observed(
        'probe',
        this.clientFor(m).ping(timeoutMs, { [FROM_NODE_HEADER]: config.self, ...this.nodeHeaders() }),
      );
    this.membership = new Membership(config, scheme, probe, clock, log, options.lookup);
    // A member gone from DNS takes its connection with it.
    this.membership.onChange(() => {
      const names = new Set(this.membership.all().map((m) => m.name));
      for (const [name, { client }] of this.clients) {
        if (names.has(name)) continue;
        client.close();
        this.clients.delete(name);
      }
    });
    // A member back from being down may hold versions others replaced meanwhile: tell it to
    // check its flights against placement and the store (it may not have noticed it was away).
    this.membership.onReturn((m) => {
      void this.action(this.member(m), 'cluster-resync', Buffer.alloc(0), {}).catch((err: unknown) =>
        log.warn({ member: m.name, err: (err as Error).message }, 'could not ask a returning member to resync'),
      );
    });
  }

  /** Asks this node to check its flights against placement and the store (Handover listens). */
  resync(): void {
    for (const l of this.resyncs) l();
  }

  onResync(listener: () => void): () => void {
    this.resyncs.add(listener);
    return () => this.resyncs.delete(listener);
  }

  get self(): string {
    return this.membership.self;
  }

  /** This node's own location (endpoints point here). */
  get location(): string | undefined {
    return this.membership.get(this.self)?.location;
  }

  start(): Promise<void> {
    return this.membership.start();
  }

  stop(): void {
    this.membership.stop();
    for (const { client } of this.clients.values()) client.close();
    this.clients.clear();
  }

  owners(path: string, replicas: number): ClusterMember[] {
    return owners(placementKey(path), this.membership.live(), replicas).map((m) => this.member(m));
  }

  onMemberDown(listener: (name: string) => void): () => void {
    return this.membership.onDown((m) => listener(m.name));
  }

  onMemberUp(listener: (member: ClusterMember) => void): () => void {
    return this.membership.onUp((m) => listener(this.member(m)));
  }

  peers(): ClusterMember[] {
    return this.membership
      .live()
      .filter((m) => m.state !== 'self')
      .map((m) => this.member(m));
  }

  members(): (ClusterMember & { state: string })[] {
    return this.membership.all().map((m) => ({ ...this.member(m), state: m.state }));
  }

  async forwardPut(
    to: ClusterMember,
    path: readonly string[],
    headers: Record<string, string>,
    messages: AsyncIterable<ForwardedMessage>,
    onAck: (ack: Buffer) => void,
  ): Promise<void> {
    // A ForwardedMessage is a FlightMessage (with `wire`, sent as is): no copy on the way.
    await this.call(to, 'DoPut', (c) => c.doPut(path, messages, this.with(headers), onAck));
  }

  /**
   * Copies the version `tag` of a flight held here to a member (a replica, or the owner it
   * is handed over to), streamed from the stored copy; it is that member's own put, of the
   * same version (its tag and times travel in VERSION_HEADER).
   */
  async copyFlight(to: ClusterMember, path: FlightPath, tag?: string): Promise<void> {
    const manager = this.options.manager;
    if (!manager) throw new Error('this cluster node has no storage to copy from');
    const lease = await manager.open(path, tag);
    try {
      const version = lease.version;
      async function* messages(): AsyncGenerator<ForwardedMessage> {
        yield { header: version.schemaHeader, body: EMPTY, appMetadata: EMPTY };
        for await (const m of lease.read(version.allMessages()))
          yield withBodyOf({ header: m.header, appMetadata: m.appMetadata }, m);
      }
      const identity = { [VERSION_HEADER]: JSON.stringify(version.identity) };
      await this.forwardPut(to, path.split('/'), identity, messages(), () => undefined);
    } finally {
      lease.release();
    }
  }

  flightInfo(from: ClusterMember, path: readonly string[], headers: Record<string, string>): Promise<PbFlightInfo> {
    // A caller waiting for a reserved flight waits there as long as it asked to.
    const wait = Number(headers['x-tierflight-wait-ms'] ?? 0) || 0;
    return this.call(
      from,
      'GetFlightInfo',
      (c) => c.flightInfoMessage(path, this.with(headers), wait + CALL_TIMEOUT_MS),
      true,
    );
  }

  pollFlightInfo(from: ClusterMember, path: readonly string[], headers: Record<string, string>): Promise<PbPollInfo> {
    // PollFlightInfo waits at most the wait header's ms (or the server's default poll wait).
    const wait = Number(headers['x-tierflight-wait-ms'] ?? 0) || 0;
    return this.call(
      from,
      'PollFlightInfo',
      (c) => c.pollInfoMessage(path, this.with(headers), (wait || DEFAULT_POLL_WAIT_MS) + CALL_TIMEOUT_MS),
      true,
    );
  }

  async *readFlight(from: ClusterMember, ticket: Buffer, headers: Record<string, string>): AsyncIterable<ReadMessage> {
    try {
      yield* this.clientFor(from).doGet(ticket, this.with(headers));
      this.options.observe?.('DoGet', 'OK');
    } catch (err) {
      this.options.observe?.('DoGet', err instanceof FlightCallError ? statusName(err.code) : 'UNKNOWN');
      throw this.failure(from, 'DoGet', err);
    }
  }

  listFlights(from: ClusterMember, prefix: string, headers: Record<string, string>): Promise<PbFlightInfo[]> {
    return this.call(
      from,
      'ListFlights',
      (c) => c.listFlightMessages(prefix, this.with(headers), LIST_TIMEOUT_MS),
      true,
    );
  }

  action(on: ClusterMember, type: string, body: Buffer, headers: Record<string, string>): Promise<Buffer[]> {
    return this.call(on, `DoAction ${type}`, async (c) => {
      const out: Buffer[] = [];
      for await (const r of c.doAction(type, body, this.with(headers), CALL_TIMEOUT_MS)) out.push(r);
      return out;
    });
  }

  private member(m: Member): ClusterMember {
    return { name: m.name, location: m.location, self: m.state === 'self' };
  }

  private nodeHeaders(): Record<string, string> {
    return this.options.nodeHeaders?.() ?? {};
  }

  /**
   * A node-to-node call's headers: marked as from this node, with the node credential when
   * there is one, and the trace context of the span it runs in (traceparent, tracestate).
   */
  private with(headers: Record<string, string>): Record<string, string> {
    return withTraceContext({ [FROM_NODE_HEADER]: this.self, ...headers, ...this.nodeHeaders() });
  }

  /** Counts a call by method and outcome, passing its result or failure on. */
  private async observed<T>(method: string, call: Promise<T>): Promise<T> {
    try {
      const result = await call;
      this.options.observe?.(method, 'OK');
      return result;
    } catch (err) {
      this.options.observe?.(method, err instanceof FlightCallError ? statusName(err.code) : 'UNKNOWN');
      throw err;
    }
  }

  /**
   * Runs a call on a member; its failure becomes a Tierflight error with the member's
   * status and retry hint, naming it. A call that changes nothing (`reads`) follows the
   * hint of a member that answered UNAVAILABLE with "here, after a while" (it is still
   * starting, its store was down for a moment): up to NODE_RETRY_ATTEMPTS tries, each wait
   * at most NODE_RETRY_WAIT_MS. Any other answer goes to the client with its hint (a
   * dataset still being written is the reader's to poll); calls that may have acted before
   * they failed are their caller's to retry.
   */
  private async call<T>(
    on: ClusterMember,
    what: string,
    fn: (c: FlightClient) => Promise<T>,
    reads = false,
  ): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await inSpan(
          `cluster ${what}`,
          { 'tierflight.member': on.name, 'server.address': on.location },
          () => this.observed(what.split(' ')[0] as string, fn(this.clientFor(on))),
          SpanKind.CLIENT,
        );
      } catch (err) {
        const failure = this.failure(on, what, err);
        // Only the member's own answer: a member that could not be reached sent no hint.
        const hint = err instanceof FlightCallError ? err.retry : undefined;
        const wait = reads && failure.code === 'UNAVAILABLE' ? retryDelay(hint, NODE_RETRY_WAIT_MS) : undefined;
        if (wait === undefined || attempt >= NODE_RETRY_ATTEMPTS) throw failure;
        this.log.debug({ member: on.name, what, wait, attempt }, 'a member said to retry: retrying');
        await this.clock.sleep(wait);
      }
    }
  }

  /** A failed call to a member as a Tierflight error: the member's status and words, or who could not be reached. */
  private failure(on: ClusterMember, what: string, err: unknown): TierflightError {
    if (err instanceof TierflightError) return err;
    if (err instanceof FlightCallError) {
      const code = errorCodeOf(err.code);
      // The member's own words when it answered; who failed when it did not.
      const message =
        err.code === FlightStatus.UNAVAILABLE || err.code === FlightStatus.DEADLINE_EXCEEDED
          ? `cluster member ${on.name} (${on.location}) cannot be reached for ${what}: ${err.details}`
          : err.details;
      // Its hint travels with its words (without the words it already put at the end).
      return new TierflightError(code, withoutRetryWords(message), err.retry ? { retry: err.retry } : undefined);
    }
    this.log.warn({ member: on.name, what, err: (err as Error).message }, 'cluster call failed');
    return new TierflightError('UNAVAILABLE', `cluster member ${on.name} failed ${what}: ${(err as Error).message}`);
  }

  private clientFor(m: { name: string; location: string }): FlightClient {
    const known = this.clients.get(m.name);
    if (known && known.location === m.location) return known.client;
    known?.client.close();
    // A member that comes back is reached again within a second (grpc-js would wait up to 2 minutes).
    const client = new FlightClient(m.location, {
      keepaliveMs: KEEPALIVE_MS,
      maxReconnectBackoffMs: 1_000,
      ...this.options.client,
    });
    this.clients.set(m.name, { location: m.location, client });
    return client;
  }
}
