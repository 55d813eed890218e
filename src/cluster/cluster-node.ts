import { FlightCallError, FlightClient, statusName, type FlightClientOptions } from '../client/flight-client.js';
import type { ClusterConfig } from '../config/schema.js';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/log.js';
import { TierflightError, type ErrorCode } from '../errors.js';
import type { ClusterMember, ClusterPort } from '../flight/cluster-port.js';
import { FROM_NODE_HEADER } from '../flight/cluster-port.js';
import type { FlightDataFrame } from '../flight/flight-data-codec.js';
import type { PbFlightInfo } from '../flight/proto.js';
import { Membership, type Lookup, type Member } from './membership.js';
import { owners } from './placement.js';

/** The gRPC status a member answered with, as a Tierflight error code (anything else: INTERNAL). */
const CALL_CODES: Record<number, ErrorCode> = {
  1: 'CANCELLED',
  3: 'INVALID_ARGUMENT',
  5: 'NOT_FOUND',
  7: 'PERMISSION_DENIED',
  8: 'RESOURCE_EXHAUSTED',
  12: 'UNIMPLEMENTED',
  14: 'UNAVAILABLE',
  16: 'UNAUTHENTICATED',
};

export interface ClusterNodeOptions {
  /** How this node reaches the others: TLS files when the cluster runs TLS. */
  client?: FlightClientOptions;
  /** Headers every node-to-node call carries (a node credential). */
  nodeHeaders?: () => Record<string, string>;
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

  constructor(
    config: ClusterConfig,
    clock: Clock,
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
    return owners(path, this.membership.live(), replicas).map((m) => this.member(m));
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
    messages: AsyncIterable<FlightDataFrame>,
    onAck: (ack: Buffer) => void,
  ): Promise<void> {
    async function* plain() {
      for await (const m of messages) yield { header: m.header, body: m.body, appMetadata: m.appMetadata };
    }
    await this.call(to, 'DoPut', (c) => c.doPut(path, plain(), this.with(headers), onAck));
  }

  flightInfo(from: ClusterMember, path: readonly string[], headers: Record<string, string>): Promise<PbFlightInfo> {
    return this.call(from, 'GetFlightInfo', (c) => c.flightInfoMessage(path, this.with(headers)));
  }

  listFlights(from: ClusterMember, prefix: string, headers: Record<string, string>): Promise<PbFlightInfo[]> {
    return this.call(from, 'ListFlights', (c) => c.listFlightMessages(prefix, this.with(headers)));
  }

  action(on: ClusterMember, type: string, body: Buffer, headers: Record<string, string>): Promise<Buffer[]> {
    return this.call(on, `DoAction ${type}`, async (c) => {
      const out: Buffer[] = [];
      for await (const r of c.doAction(type, body, this.with(headers))) out.push(r);
      return out;
    });
  }

  private member(m: Member): ClusterMember {
    return { name: m.name, location: m.location, self: m.state === 'self' };
  }

  private nodeHeaders(): Record<string, string> {
    return this.options.nodeHeaders?.() ?? {};
  }

  /** The call's headers with the node credential in place of the user's when there is one. */
  private with(headers: Record<string, string>): Record<string, string> {
    return { ...headers, ...this.nodeHeaders() };
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

  /** Runs a call on a member; its failure becomes a Tierflight error with the member's status, naming it. */
  private async call<T>(on: ClusterMember, what: string, fn: (c: FlightClient) => Promise<T>): Promise<T> {
    try {
      return await this.observed(what.split(' ')[0] as string, fn(this.clientFor(on)));
    } catch (err) {
      if (err instanceof TierflightError) throw err;
      if (err instanceof FlightCallError) {
        const code = CALL_CODES[err.code] ?? (err.code === 4 ? 'UNAVAILABLE' : 'INTERNAL');
        // The member's own words when it answered; who failed when it did not.
        const message =
          err.code === 14 || err.code === 4
            ? `cluster member ${on.name} (${on.location}) cannot be reached for ${what}: ${err.details}`
            : err.details;
        throw new TierflightError(code, message);
      }
      this.log.warn({ member: on.name, what, err: (err as Error).message }, 'cluster call failed');
      throw new TierflightError('UNAVAILABLE', `cluster member ${on.name} failed ${what}: ${(err as Error).message}`);
    }
  }

  private clientFor(m: { name: string; location: string }): FlightClient {
    const known = this.clients.get(m.name);
    if (known && known.location === m.location) return known.client;
    known?.client.close();
    const client = new FlightClient(m.location, this.options.client ?? {});
    this.clients.set(m.name, { location: m.location, client });
    return client;
  }
}
