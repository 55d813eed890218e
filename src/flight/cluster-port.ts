import type { FlightPath } from '../core/path.js';
import type { Metadata } from '@grpc/grpc-js';
import type { PbFlightInfo, PbPollInfo } from './proto.js';
import { identityOf } from './guard.js';
import { FROM_NODE_HEADER, ON_BEHALF_HEADER } from '../auth/node-credential.js';

/**
 * What the Flight service needs of a cluster (DESIGN §8), implemented by `src/cluster/` (which
 * sits above the Flight client it calls other nodes with) and handed in by node/compose.ts. Peers'
 * failures reach here as Tierflight errors carrying the peer's status code.
 */
export interface ClusterPort {
  /** This node's member name. */
  readonly self: string;
  /** The live owners of a path, primary first: the first `replicas` by rendezvous hashing. */
  owners(path: string, replicas: number): ClusterMember[];
  /** Calls `listener` with a member's name whenever it is marked down. */
  onMemberDown(listener: (name: string) => void): () => void;
  /** Calls `listener` with a member whenever it is seen up (first seen after this node started, or back from down). */
  onMemberUp(listener: (member: ClusterMember) => void): () => void;
  /** Every other live member. */
  peers(): ClusterMember[];
  /** Every member with its state as this node sees it (`self`, `unknown`, `up`, `down`). */
  members(): (ClusterMember & { state: string })[];
  /** Streams a DoPut to a member (backpressure kept: the next message is pulled once the last is sent); acks as they come. */
  forwardPut(
    to: ClusterMember,
    path: readonly string[],
    headers: Record<string, string>,
    messages: AsyncIterable<ForwardedMessage>,
    onAck: (ack: Buffer) => void,
  ): Promise<void>;
  /** Checks this node's flights against placement and the durable store soon (another member saw it return). */
  resync(): void;
  /** Copies the version `tag` of a flight held here to a member, as that member's own put. */
  copyFlight(to: ClusterMember, path: FlightPath, tag?: string): Promise<void>;
  pollFlightInfo(from: ClusterMember, path: readonly string[], headers: Record<string, string>): Promise<PbPollInfo>;
  flightInfo(from: ClusterMember, path: readonly string[], headers: Record<string, string>): Promise<PbFlightInfo>;
  listFlights(from: ClusterMember, prefix: string, headers: Record<string, string>): Promise<PbFlightInfo[]>;
  /** A DoGet of a ticket at a member: its messages (the schema first) as they come. */
  readFlight(from: ClusterMember, ticket: Buffer, headers: Record<string, string>): AsyncIterable<ReadMessage>;
  action(on: ClusterMember, type: string, body: Buffer, headers: Record<string, string>): Promise<Buffer[]>;
}

/** One FlightData message read from another node. */
export interface ReadMessage {
  header: Buffer;
  readonly body: Buffer;
  appMetadata?: Buffer;
  /** The message as received, behind its gRPC prefix, when it held only header, metadata and body. */
  prefixed?: Buffer;
}

/** One FlightData message as it goes on to another node (the descriptor is added to the first). */
export interface ForwardedMessage {
  header: Buffer;
  body: Buffer;
  appMetadata: Buffer;
  /** The message as this node received it, when it can be sent on as is (no copy, no re-encoding). */
  wire?: Buffer;
}

/**
 * The port of a node outside any cluster: it owns every path, and has no peers and no
 * members, so routing (`Owners`) answers every call here. Nothing ever asks it to call
 * another node; if something did, that is a bug and says so.
 */
export const SOLO_NODE: ClusterPort = {
  self: '',
  owners: () => [{ name: '', location: '', self: true }],
  onMemberDown: () => () => undefined,
  onMemberUp: () => () => undefined,
  peers: () => [],
  members: () => [],
  resync: () => undefined,
  forwardPut: () => noPeers(),
  copyFlight: () => noPeers(),
  pollFlightInfo: () => noPeers(),
  flightInfo: () => noPeers(),
  listFlights: () => noPeers(),
  readFlight: () => ({ [Symbol.asyncIterator]: () => ({ next: () => noPeers() }) }),
  action: () => noPeers(),
};

function noPeers(): Promise<never> {
  return Promise.reject(new Error('a node outside any cluster has no other node to call'));
}

export interface ClusterMember {
  name: string;
  location: string;
  self: boolean;
}

/** When the version a FlightInfo describes was written (its app_metadata's `updatedAt`), or 0. */
export function updatedAtOf(info: PbFlightInfo): number {
  try {
    const meta = JSON.parse(info.app_metadata?.toString() ?? '{}') as { updatedAt?: string };
    return meta.updatedAt ? Date.parse(meta.updatedAt) : 0;
  } catch {
    return 0;
  }
}

export { FROM_NODE_HEADER, VERSION_HEADER } from '../auth/node-credential.js';

/**
 * How long one PollFlightInfo call waits for a reserved flight when the client names no
 * wait (a member that forwards one waits this long for the owner's answer, plus its deadline).
 */
export const DEFAULT_POLL_WAIT_MS = 10_000;

/** The Tierflight request headers a forwarded call carries on. */
const FORWARDED = ['x-tierflight-owner', 'x-tierflight-flight-size', 'x-tierflight-wait-ms', 'x-tierflight-partition'];

/** A call another node made on a client's behalf (answered here, never routed on). */
export function fromNode(call: { metadata: Metadata }): boolean {
  return call.metadata.get(FROM_NODE_HEADER).length > 0;
}

/**
 * The headers to call another node with on behalf of this call: the Tierflight ones, and the
 * caller's user name (the node adds its own credential; with auth off there is no user).
 */
export function forwardedHeaders(cluster: ClusterPort, call: { metadata: Metadata }): Record<string, string> {
  const out: Record<string, string> = { [FROM_NODE_HEADER]: cluster.self };
  for (const key of FORWARDED) {
    const value = call.metadata.get(key)[0];
    if (value !== undefined) out[key] = value.toString();
  }
  const identity = identityOf(call);
  if (!identity.anonymous) out[ON_BEHALF_HEADER] = identity.user;
  return out;
}
