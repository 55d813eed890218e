import type { ServerWritableStream } from '@grpc/grpc-js';
import { InvalidArgumentError } from '../../errors.js';
import { flightPath, normalizePrefix, partitionOf, type FlightPath } from '../../core/path.js';
import { DEFAULT_POLL_WAIT_MS, waitIfReserved, waitMsOf } from './wait.js';
import { encapsulateSchema, unwrapMessage } from '../../ipc/ipc-stream.js';
import type { FlightVersion } from '../../storage/flight.js';
import { cancelSignal, EMPTY, streamOut, toTimestamp, unary, type RpcContext } from '../call.js';
import { DescriptorType } from '../flight-data-codec.js';
import type { PbDescriptor, PbFlightInfo, PbPollInfo } from '../proto.js';
import { columnsOf, decodeTicket, encodeTicket } from '../ticket.js';
import { Projection } from '../../ipc/projection.js';
import { datasetInfo } from './datasets.js';
import { authorize, identityOf } from '../guard.js';

/**
 * The metadata calls: ListFlights, GetFlightInfo (waiting for a reserved flight when asked
 * to), PollFlightInfo (long-polls a reserved flight) and GetSchema.
 */
export function infoHandlers(ctx: RpcContext) {
  const { manager } = ctx;
  const endpoints = (version: FlightVersion): PbFlightInfo['endpoint'] => {
    const ranges = version.endpointRanges(ctx.maxEndpointBytes);
    const locations = ctx.owners.locations(version, ctx.advertise).map((uri) => ({ uri }));
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
  const lookup = async (path: FlightPath): Promise<FlightVersion> => {
    await manager.materialize(path);
    return manager.lookup(path);
  };

  /** The descriptor's path, parsed (once), once the caller is known to may read it. */
  const readable = (call: object, descriptor: PbDescriptor) => {
    const parts = pathOf(descriptor);
    const path = flightPath(parts);
    authorize(call, path, 'read', ctx.denied);
    return { parts, path };
  };
  /** A PATH descriptor, or a command `{"path", "columns"}` (column projection: `columns`). */
  const projectable = (call: object, descriptor: PbDescriptor): { path: FlightPath; columns?: string[] } => {
    const command = commandOf(descriptor);
    if (!command) return readable(call, descriptor);
    const path = flightPath(command.path);
    authorize(call, path, 'read', ctx.denied);
    return { path, columns: command.columns };
  };

  return {
    ListFlights: (call: ServerWritableStream<{ expression: Buffer }, PbFlightInfo>): void => {
      void streamOut(ctx, call, 'ListFlights', async (write) => {
        const prefix = call.request.expression.toString('utf8');
        // Only what the caller may read is listed (with auth off, everything).
        const identity = identityOf(call);
        // Streamed a page at a time, in path order, as the catalog has them; in a cluster,
        // joined with the other members' lists (`Owners.list`).
        async function* local() {
          // Partitions are listed as their datasets (one entry each), merged in path order;
          // a dataset found only by its stored partitions (after a restart) where they are.
          const datasets = ctx.datasets.listVisible(normalizedPrefix(prefix)).map((g) => g.dataset);
          const shown = new Set<string>();
          async function* entry(dataset: FlightPath) {
            if (shown.has(dataset) || !identity.can(dataset, 'read')) return;
            shown.add(dataset);
            // One lost or incomplete meanwhile is left out.
            const info = await datasetInfo(ctx, dataset).catch(() => undefined);
            if (info) yield info;
          }
          for await (const version of manager.listing(prefix)) {
            const partition = partitionOf(version.path);
            if (partition) {
              if (!shown.has(partition.dataset) && ctx.datasets.has(partition.dataset)) yield* entry(partition.dataset);
              continue;
            }
            while (datasets[0] !== undefined && datasets[0] < version.path)
              yield* entry(datasets.shift() as FlightPath);
            if (identity.can(version.path, 'read')) yield flightInfo(version);
          }
          for (const dataset of datasets) yield* entry(dataset);
        }
        for await (const info of ctx.owners.list(call, prefix, local)) await write(info);
      });
    },

    GetFlightInfo: unary(ctx, 'GetFlightInfo', async (descriptor: PbDescriptor, call) => {
      const { path, columns } = projectable(call, descriptor);
      const local = async () => {
        const waitMs = waitMsOf(call.metadata);
        const atHome = ctx.homes.infoAtHome(call, path);
        if (atHome) return atHome;
        if (ctx.datasets.has(path)) {
          // A dataset being written: wait for its last partition if asked to.
          if (waitMs !== undefined) await ctx.datasets.waitVisible(path, waitMs, cancelSignal(call));
          return datasetInfo(ctx, path);
        }
        if (waitMs !== undefined && !(await manager.known(path))) await waitIfReserved(ctx, path, call, waitMs);
        return flightInfo(await lookup(path));
      };
      const info = await ctx.owners.info(call, path, local, (i) => i);
      return columns ? projectInfo(info, descriptor, columns) : info;
    }),

    GetSchema: unary(ctx, 'GetSchema', async (descriptor: PbDescriptor, call) => {
      const { path, columns } = projectable(call, descriptor);
      const local = async () => ({
        schema:
          (await ctx.homes.infoAtHome(call, path))?.schema ??
          (ctx.datasets.has(path)
            ? (await datasetInfo(ctx, path)).schema
            : encapsulateSchema((await lookup(path)).schemaHeader)),
      });
      const { schema } = await ctx.owners.info(call, path, local, (info) => ({ schema: info.schema }));
      return { schema: columns ? projectSchema(schema, columns) : schema };
    }),

    // A visible flight is complete: `info` at once. An absent, reserved one: wait for it (the
    // wait header's ms, or DEFAULT_POLL_WAIT_MS), then `info`, or the descriptor to poll
    // again until the reservation's expiry. Absent and not reserved: NOT_FOUND.
    PollFlightInfo: unary(ctx, 'PollFlightInfo', async (descriptor: PbDescriptor, call): Promise<PbPollInfo> => {
      const { parts, path } = readable(call, descriptor);
      // In a cluster the owner answers: the put lands there and the wait happens there.
      return ctx.owners.poll(call, path, async () => {
        if (ctx.datasets.has(path)) return { info: await datasetInfo(ctx, path), progress: 1 };
        if (!(await manager.known(path))) {
          await waitIfReserved(ctx, path, call, waitMsOf(call.metadata) ?? DEFAULT_POLL_WAIT_MS);
          if (!manager.has(path)) {
            const holder = await ctx.reservations.holder(path);
            if (holder) {
              return {
                flight_descriptor: { type: 'PATH', cmd: EMPTY, path: parts },
                expiration_time: toTimestamp(holder.expiresAt),
              };
            }
          }
        }
        return { info: flightInfo(await lookup(path)), progress: 1 };
      });
    }),
  };
}

/** A CMD descriptor's projection, `{"path": "a/b", "columns": ["x", "y"]}`; undefined for a PATH descriptor. */
function commandOf(descriptor: PbDescriptor): { path: string; columns: string[] } | undefined {
  if (descriptor.type !== 'CMD' && descriptor.type !== DescriptorType.CMD) return undefined;
  let doc: unknown;
  try {
    doc = JSON.parse(descriptor.cmd.toString('utf8'));
  } catch {
    doc = undefined;
  }
  const { path, columns } = (doc ?? {}) as { path?: unknown; columns?: unknown };
  if (typeof path !== 'string') {
    throw new InvalidArgumentError(
      'a CMD descriptor must be JSON {"path": "...", "columns": [...]} (a column projection); address flights by PATH descriptors otherwise',
    );
  }
  return { path, columns: columnsOf(path, columns) };
}

/**
 * A FlightInfo (this node's or the owner's) as the projection to `columns` of it: the schema
 * projected (INVALID_ARGUMENT naming columns the flight does not have), every endpoint's
 * ticket carrying the columns, the total bytes unknown (-1), the descriptor as asked.
 */
function projectInfo(info: PbFlightInfo, descriptor: PbDescriptor, columns: string[]): PbFlightInfo {
  return {
    ...info,
    schema: projectSchema(info.schema, columns),
    flight_descriptor: descriptor,
    endpoint: info.endpoint.map((e) => ({
      ...e,
      ticket: { ticket: encodeTicket({ ...decodeTicket(e.ticket.ticket), columns }) },
    })),
    total_bytes: -1,
  };
}

/** An encapsulated schema message projected to `columns` (INVALID_ARGUMENT naming columns it does not have). */
function projectSchema(schema: Buffer, columns: string[]): Buffer {
  return encapsulateSchema(Projection.of(unwrapMessage(schema), columns).schemaHeader);
}

function pathOf(descriptor: PbDescriptor): string[] {
  if (descriptor.type !== 'PATH' && descriptor.type !== DescriptorType.PATH) {
    throw new InvalidArgumentError(`Tierflight addresses flights by PATH descriptors; got ${descriptor.type}`);
  }
  return descriptor.path;
}

/** A ListFlights prefix in normal form ('' when it is not one: the listing itself says why). */
function normalizedPrefix(prefix: string): string {
  const norm = normalizePrefix(prefix);
  return norm.ok ? norm.value : '';
}
