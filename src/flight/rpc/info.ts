import type { Metadata, ServerWritableStream } from '@grpc/grpc-js';
import { acrossCluster, forwardedHeaders, updatedAtOf, type ClusterMember, type ClusterPort } from '../cluster-port.js';
import { InvalidArgumentError, isTierflightError } from '../../errors.js';
import { StorageManager } from '../../storage/manager.js';
import { DEFAULT_POLL_WAIT_MS, waitIfReserved, waitMsOf } from './wait.js';
import { encapsulateSchema } from '../../ipc/message-header.js';
import type { FlightVersion } from '../../storage/flight.js';
import { EMPTY, streamOut, unary, type RpcContext } from '../call.js';
import { DescriptorType } from '../flight-data-codec.js';
import type { PbDescriptor, PbFlightInfo, PbPollInfo } from '../proto.js';
import { encodeTicket } from '../ticket.js';
import { authorize, identityOf } from '../guard.js';

/**
 * The metadata calls: ListFlights, GetFlightInfo (waiting for a reserved flight when asked
 * to), PollFlightInfo (long-polls a reserved flight) and GetSchema.
 */
export function infoHandlers(ctx: RpcContext) {
  const { manager } = ctx;
  const endpoints = (version: FlightVersion): PbFlightInfo['endpoint'] => {
    const ranges = version.endpointRanges(ctx.maxEndpointBytes);
    const locations = locationsOf(ctx, version).map((uri) => ({ uri }));
    // Until then the tickets read this version, even if the path is replaced meanwhile.
    const expiration = toTimestamp(manager.issueTickets(version));
    return ranges.map((range) => ({
      ticket: {
        ticket: encodeTicket({ path: version.path, version: version.tag, ...(ranges.length > 1 ? { range } : {}) }),
      },
      location: locations,
      expiration_time: expiration,
      app_metadata: EMPTY,
    }));
  };

  const flightInfo = (version: FlightVersion): PbFlightInfo => ({
    schema: encapsulateSchema(version.schemaHeader),
    flight_descriptor: { type: 'PATH', cmd: EMPTY, path: version.path.split('/') },
    endpoint: endpoints(version),
    total_records: version.totalRecords,
    total_bytes: version.totalBytes,
    ordered: true,
    // DESIGN §6: when the path was first written, when this version was, and by which owner.
    app_metadata: Buffer.from(
      JSON.stringify({
        createdAt: new Date(version.firstCreatedAt).toISOString(),
        updatedAt: new Date(version.createdAt).toISOString(),
        owner: version.owner ?? null,
        pinned: version.pinned,
      }),
    ),
  });

  /** The flight at a path, its manifest read first if a start only listed it. */
  const lookup = async (parts: readonly string[]): Promise<FlightVersion> => {
    await manager.materialize(parts);
    return manager.lookup(parts);
  };

  /** This node's answer for a path another node owns: what it holds, or can restore from the durable store. */
  const localInfo = async (parts: readonly string[]): Promise<PbFlightInfo> => {
    if (!manager.has(parts)) await manager.adoptFromStore(manager.route(parts).path);
    return flightInfo(await lookup(parts));
  };

  /** The descriptor's path, once the caller is known to may read it. */
  const readable = (call: object, descriptor: PbDescriptor): string[] => {
    const parts = pathOf(descriptor);
    authorize(call, StorageManager.parsePath(parts).path, 'read', ctx.denied);
    return parts;
  };

  return {
    ListFlights: (call: ServerWritableStream<{ expression: Buffer }, PbFlightInfo>): void => {
      void streamOut(ctx, call, 'ListFlights', async (write) => {
        const prefix = call.request.expression.toString('utf8');
        // Only what the caller may read is listed (with auth off, everything).
        const identity = identityOf(call);
        const cluster = acrossCluster(ctx.cluster, call.metadata);
        if (!cluster) {
          // Streamed a page at a time, in path order, as the catalog has them.
          for await (const version of manager.listing(prefix))
            if (identity.can(version.path, 'read')) await write(flightInfo(version));
          return;
        }
        const local = [];
        for await (const version of manager.listing(prefix))
          if (identity.can(version.path, 'read')) local.push(version);
        // Every member's flights (each filters by the same caller), one per path.
        const answers = await Promise.all(
          cluster.peers().map((peer) =>
            cluster.listFlights(peer, prefix, forwardedHeaders(cluster, call)).catch((err: unknown) => {
              ctx.log.warn({ member: peer.name, err: (err as Error).message }, 'ListFlights: a member did not answer');
              return [];
            }),
          ),
        );
        for (const info of newestPerPath([local.map(flightInfo), ...answers])) await write(info);
      });
    },

    GetFlightInfo: unary(ctx, 'GetFlightInfo', async (descriptor: PbDescriptor, call) => {
      const parts = readable(call, descriptor);
      const elsewhere = await ownerElsewhere(ctx, call, parts);
      if (elsewhere) return fromOwner(elsewhere, parts, () => localInfo(parts));
      const waitMs = waitMsOf(call.metadata);
      if (waitMs === undefined || (await manager.known(parts))) return flightInfo(await lookup(parts));
      await waitIfReserved(ctx, parts, call, waitMs);
      return flightInfo(await lookup(parts));
    }),

    GetSchema: unary(ctx, 'GetSchema', async (descriptor: PbDescriptor, call) => {
      const parts = readable(call, descriptor);
      const elsewhere = await ownerElsewhere(ctx, call, parts);
      const local = async () => ({ schema: encapsulateSchema((await lookup(parts)).schemaHeader) });
      if (!elsewhere) return local();
      return { schema: (await fromOwner(elsewhere, parts, () => localInfo(parts))).schema };
    }),

    // A visible flight is complete: `info` at once. An absent, reserved one: wait for it (the
    // wait header's ms, or DEFAULT_POLL_WAIT_MS), then `info`, or the descriptor to poll
    // again until the reservation's expiry. Absent and not reserved: NOT_FOUND.
    PollFlightInfo: unary(ctx, 'PollFlightInfo', async (descriptor: PbDescriptor, call): Promise<PbPollInfo> => {
      const parts = readable(call, descriptor);
      // In a cluster the owner answers: the put lands there and the wait happens there.
      const elsewhere = await ownerElsewhere(ctx, call, parts);
      if (elsewhere) return elsewhere.cluster.pollFlightInfo(elsewhere.to, parts, elsewhere.headers);
      if (!(await manager.known(parts))) {
        await waitIfReserved(ctx, parts, call, waitMsOf(call.metadata) ?? DEFAULT_POLL_WAIT_MS);
        if (!manager.has(parts)) {
          const holder = await ctx.reservations.holder(StorageManager.parsePath(parts).path);
          if (holder) {
            return {
              flight_descriptor: { type: 'PATH', cmd: EMPTY, path: parts },
              expiration_time: toTimestamp(holder.expiresAt),
            };
          }
        }
      }
      return { info: flightInfo(await lookup(parts)), progress: 1 };
    }),
  };
}

/**
 * Where an endpoint of a flight this node answers for can be read: this node (its advertised
 * location, none for "this server"), and in a cluster the path's other owners too (a replica
 * holds a copy, or restores a durable one on first read).
 */
function locationsOf(ctx: RpcContext, version: FlightVersion): string[] {
  const self = ctx.advertise ? [ctx.advertise] : [];
  if (!ctx.cluster) return self;
  // An owner answers with the owners in placement order (the primary first); another node
  // that answers for a flight it holds names itself first.
  const owners = ctx.cluster.owners(version.path, version.cls.config.replicas);
  if (owners.some((o) => o.self)) return owners.map((o) => (o.self ? (self[0] ?? o.location) : o.location));
  return [...new Set([...self, ...owners.map((o) => o.location)])];
}

/**
 * In a cluster, for a call from a client (not another node): the path's primary owner when
 * this node is not one of its owners, so the call is answered there; this node first makes
 * sure it has what the durable store holds for a path it owns (another owner may have put it).
 */
async function ownerElsewhere(
  ctx: RpcContext,
  call: { metadata: Metadata },
  parts: readonly string[],
): Promise<{ cluster: ClusterPort; to: ClusterMember; headers: Record<string, string> } | undefined> {
  if (!ctx.cluster) return undefined;
  const { path, cls } = ctx.manager.route(parts);
  const cluster = acrossCluster(ctx.cluster, call.metadata);
  const owners = cluster?.owners(path, cls.config.replicas) ?? [];
  const to = owners[0];
  if (!cluster || !to || owners.some((o) => o.self)) {
    // Answered here (an owner, or asked by another node): a durable flight another node put,
    // or one this node took over from a member that left, is read from the store first.
    if (!ctx.manager.has(parts)) await ctx.manager.adoptFromStore(path);
    return undefined;
  }
  return { cluster, to, headers: forwardedHeaders(cluster, call) };
}

/**
 * The owner's FlightInfo; when the owner cannot be reached (down, not yet marked so), this
 * node's own answer if it has the flight (a durable one it can restore), else the owner's error.
 */
async function fromOwner(
  owner: { cluster: ClusterPort; to: ClusterMember; headers: Record<string, string> },
  parts: readonly string[],
  local: () => Promise<PbFlightInfo>,
): Promise<PbFlightInfo> {
  try {
    return await owner.cluster.flightInfo(owner.to, parts, owner.headers);
  } catch (err) {
    if (isTierflightError(err) && err.code === 'UNAVAILABLE') {
      return local().catch(() => {
        throw err;
      });
    }
    throw err;
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

function pathOf(descriptor: PbDescriptor): string[] {
  if (descriptor.type !== 'PATH' && descriptor.type !== DescriptorType.PATH) {
    throw new InvalidArgumentError(`Tierflight addresses flights by PATH descriptors; got ${descriptor.type}`);
  }
  return descriptor.path;
}

function toTimestamp(ms: number | undefined): { seconds: number; nanos: number } | null {
  if (ms === undefined) return null;
  return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1_000_000 };
}
