import { partitionPath, type FlightPath } from '../../core/path.js';
import type { Generation, LandedPartition } from '../../datasets/datasets.js';
import { isTierflightError, NotFoundError } from '../../errors.js';
import { encapsulateSchema } from '../../ipc/ipc-stream.js';
import type { FlightVersion } from '../../storage/flight.js';
import { EMPTY, toTimestamp, type RpcContext } from '../call.js';
import type { ClusterMember } from '../cluster-port.js';
import type { PbFlightInfo } from '../proto.js';
import { encodeTicket } from '../ticket.js';

/**
 * One partition of a visible dataset as its home reads it: held here (`version`), or held by
 * other members (`owners`), described by what its owner said when it landed.
 */
export type PartitionRead = { index: number; path: FlightPath; landed: LandedPartition } & (
  { version: FlightVersion; owners?: undefined } | { version?: undefined; owners: ClusterMember[] }
);

/**
 * The partitions of a visible dataset, in partition order. A partition this node should hold
 * that is gone (evicted or expired) loses the whole dataset: it is dropped, with its other
 * partitions, and the caller gets NOT_FOUND saying to recompute it — never part of a table.
 */
export async function partitionsOf(ctx: RpcContext, generation: Generation): Promise<PartitionRead[]> {
  const { dataset, count, number } = generation;
  const out: PartitionRead[] = [];
  for (let i = 0; i < count; i++) {
    const path = partitionPath(dataset, number, i, count);
    const landed = generation.landed.get(i) ?? {};
    const owners = ctx.homes.heldElsewhere(path);
    if (owners) {
      out.push({ index: i, path, landed, owners });
      continue;
    }
    try {
      // A durable partition another member put (it went down, or placement moved) is restored here.
      await ctx.owners.readHere(path);
      await ctx.manager.materialize(path);
      out.push({ index: i, path, landed, version: ctx.manager.lookup(path, landed.tag) });
    } catch (err) {
      if (!isTierflightError(err) || err.code !== 'NOT_FOUND') throw err;
      ctx.datasets.lose({ dataset, index: i, count, reason: 'missing' });
      throw new NotFoundError(`dataset "${dataset}" lost partition ${i} of ${count} (gone); recompute it`);
    }
  }
  return out;
}

/** The ticket that reads one partition: its stored path and version. */
export function partitionTicket(p: PartitionRead, columns?: string[]): Buffer {
  return encodeTicket({ path: p.path, version: p.version?.tag ?? p.landed.tag, ...(columns ? { columns } : {}) });
}

/**
 * A visible dataset's FlightInfo: one endpoint per partition in partition order (`ordered`),
 * each located where its partition is held, totals summed, the partition count in
 * `app_metadata`. NOT_FOUND naming the missing partitions while no generation is visible.
 */
export async function datasetInfo(ctx: RpcContext, dataset: FlightPath): Promise<PbFlightInfo> {
  const generation = ctx.datasets.visible(dataset);
  const partitions = await partitionsOf(ctx, generation);
  // Found again from its stored partitions (after a restart): their schema is the dataset's.
  generation.schema ??= partitions.find((p) => p.version)?.version?.schemaHeader;
  let records = 0;
  let bytes = 0;
  const endpoint = partitions.map((p) => {
    const { version, owners } = p;
    records += version ? version.totalRecords : (p.landed.records ?? 0);
    bytes += version ? version.totalBytes : (p.landed.bytes ?? 0);
    return {
      ticket: { ticket: partitionTicket(p) },
      location: (version ? ctx.owners.locations(version, ctx.advertise) : owners.map((o) => o.location)).map((uri) => ({
        uri,
      })),
      // Until then the ticket reads this partition, even after a newer generation lands (a
      // replaced generation stays that long: `server.ticketGrace`).
      expiration_time: toTimestamp(version ? ctx.manager.issueTickets(version) : ctx.datasets.ticketsUntil()),
      app_metadata: EMPTY,
    };
  });
  const at = new Date(generation.completedAt ?? 0).toISOString();
  return {
    schema: encapsulateSchema(generation.schema ?? EMPTY),
    flight_descriptor: { type: 'PATH', cmd: EMPTY, path: dataset.split('/') },
    endpoint,
    total_records: records,
    total_bytes: bytes,
    ordered: true,
    app_metadata: Buffer.from(
      JSON.stringify({ createdAt: at, updatedAt: at, owner: null, pinned: false, partitions: generation.count }),
    ),
  };
}
