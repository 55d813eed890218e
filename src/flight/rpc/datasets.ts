import { partitionPath, type FlightPath } from '../../core/path.js';
import type { Generation } from '../../datasets/datasets.js';
import { isTierflightError, NotFoundError } from '../../errors.js';
import { encapsulateSchema } from '../../ipc/ipc-stream.js';
import type { FlightVersion } from '../../storage/flight.js';
import { EMPTY, toTimestamp, type RpcContext } from '../call.js';
import type { PbFlightInfo } from '../proto.js';
import { encodeTicket } from '../ticket.js';

/**
 * The versions of a visible dataset's partitions, in partition order. A partition that is
 * gone (evicted or expired) loses the whole dataset: it is dropped, with its other
 * partitions, and the caller gets NOT_FOUND saying to recompute it — never part of a table.
 */
export async function partitionsOf(ctx: RpcContext, generation: Generation): Promise<FlightVersion[]> {
  const { dataset, count, number } = generation;
  const out: FlightVersion[] = [];
  for (let i = 0; i < count; i++) {
    const path = partitionPath(dataset, number, i, count);
    try {
      await ctx.manager.materialize(path);
      out.push(ctx.manager.lookup(path, generation.landed.get(i)?.tag));
    } catch (err) {
      if (!isTierflightError(err) || err.code !== 'NOT_FOUND') throw err;
      ctx.datasets.drop(dataset);
      ctx.log.warn({ dataset, partition: i, partitions: count }, 'a dataset lost a partition; it is dropped whole');
      throw new NotFoundError(
        `dataset "${dataset}" lost partition ${i} of ${count} (evicted or expired); recompute it`,
      );
    }
  }
  return out;
}

/**
 * A visible dataset's FlightInfo: one endpoint per partition in partition order (`ordered`),
 * each located where its partition is held, totals summed, the partition count in
 * `app_metadata`. NOT_FOUND naming the missing partitions while no generation is visible.
 */
export async function datasetInfo(ctx: RpcContext, dataset: FlightPath): Promise<PbFlightInfo> {
  const generation = ctx.datasets.visible(dataset);
  const versions = await partitionsOf(ctx, generation);
  let records = 0;
  let bytes = 0;
  const endpoint = versions.map((version) => {
    records += version.totalRecords;
    bytes += version.totalBytes;
    return {
      ticket: { ticket: encodeTicket({ path: version.path, version: version.tag }) },
      location: ctx.owners.locations(version, ctx.advertise).map((uri) => ({ uri })),
      // Until then the ticket reads this partition, even after a newer generation lands.
      expiration_time: toTimestamp(ctx.manager.issueTickets(version)),
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
