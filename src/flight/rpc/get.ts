import { annotate } from '../../core/trace.js';
import type { ServerWritableStream } from '@grpc/grpc-js';
import { BufferPool } from '../../core/buffer-pool.js';
import { bodyLength, withBodyOf, type Frame } from '../../ipc/frame.js';
import { EMPTY, gone, streamOut, type RpcContext } from '../call.js';
import { PrefixedFlightData, type OutgoingFlightData } from '../flight-data-codec.js';
import { decodeTicket } from '../ticket.js';
import { waitIfReserved } from './wait.js';
import { authorize } from '../guard.js';
import { partitionOf, ticketPath, type FlightPath } from '../../core/path.js';
import type { FlightVersion } from '../../storage/flight.js';
import { partitionsOf, partitionTicket } from './datasets.js';
import { Projection } from '../../ipc/projection.js';
import { fromNode, type ClusterMember } from '../cluster-port.js';

/**
 * Read buffers kept for reuse between DoGets from the disk tiers (see BufferPool): enough
 * for a few streams' worth of batches in flight.
 */
const READ_POOL_IDLE_BYTES = 64 * 1024 * 1024;

/**
 * DoGet: the schema, then the ticket's stored messages as they are (behind the gRPC prefix
 * they were received with, no copy), from a pinned copy, with backpressure.
 */
export function doGet(ctx: RpcContext) {
  const { manager, splitter } = ctx;
  const readPool = new BufferPool(READ_POOL_IDLE_BYTES);
  return (call: ServerWritableStream<{ ticket: Buffer }, OutgoingFlightData>): void => {
    void streamOut(ctx, call, 'DoGet', async (write) => {
      const ticket = decodeTicket(call.request.ticket);
      // Parsed once (a client's path, or a dataset partition's from a dataset's endpoint);
      // the checks and the lease below take it as is. A partition is read with its dataset's access.
      const path = ticketPath(ticket.path);
      authorize(call, partitionOf(path)?.dataset ?? path, 'read', ctx.denied);
      await waitIfReserved(ctx, path, call);
      if (ticket.version === undefined && ctx.datasets.has(path)) {
        // The dataset's plain path: every partition in order, the schema once; in a cluster,
        // the partitions other members hold read from them.
        const partitions = await partitionsOf(ctx, ctx.datasets.visible(path));
        for (const p of partitions) {
          const first = p.index === 0;
          const sent = p.version
            ? await send(p.path, p.version.tag, undefined, first)
            : await relay(p.owners, partitionTicket(p, ticket.columns), first);
          if (!sent) return;
        }
        return;
      }
      // Another member's partition (a client reading every endpoint through this node): read there.
      const elsewhere = partitionOf(path) && !fromNode(call) ? ctx.homes.heldElsewhere(path) : undefined;
      if (elsewhere) {
        await relay(elsewhere, call.request.ticket, true);
        return;
      }
      // Not held here: restored from the durable store, or NOT_FOUND naming its owners.
      await ctx.owners.readHere(path);
      await send(path, ticket.version, ticket.range, true);

      /** Streams a ticket read from another member (its schema message only when asked); false once the client is gone. */
      async function relay(owners: ClusterMember[], at: Buffer, withSchema: boolean): Promise<boolean> {
        let first = true;
        for await (const m of ctx.homes.readElsewhere(call, owners, at)) {
          if (gone(call)) return false;
          // The owner's stream starts with the schema: passed on only when asked; each message
          // goes on as it came (its app_metadata too), not encoded again.
          if (!first || withSchema) {
            const appMetadata = m.appMetadata ?? EMPTY;
            await write(
              m.prefixed ? new PrefixedFlightData(m.prefixed) : withBodyOf({ header: m.header, appMetadata }, m),
            );
          }
          first = false;
        }
        return true;
      }

      /** Streams one stored version (its schema first when asked); false once the client is gone. */
      async function send(
        at: FlightPath,
        tag: string | undefined,
        range: Parameters<FlightVersion['messagesFor']>[0],
        withSchema: boolean,
      ): Promise<boolean> {
        const lease = await manager.open(at, tag);
        try {
          const version = lease.version;
          const messages = version.messagesFor(range);
          // A projection (the ticket's `columns`) rewrites headers and gathers bodies; else
          // the stored bytes go as they are.
          const projection = ticket.columns ? Projection.of(version.schemaHeader, ticket.columns) : undefined;
          const schemaHeader = projection?.schemaHeader ?? version.schemaHeader;
          if (withSchema) await write({ header: schemaHeader, body: EMPTY });
          const dictionaries: Frame[] = [];
          let bytes = 0;
          let batches = 0;
          // The call's span (with tracing on) says what was read, and how much went out.
          annotate(() => ({ 'tierflight.path': at, 'tierflight.class': version.cls.config.name }));
          for await (const stored of lease.read(messages, readPool)) {
            if (gone(call)) return false;
            let m = stored;
            // A dictionary a chosen column uses goes as it is; a batch is projected (copied
            // out, so a pooled read buffer goes back at once), and other dictionaries are skipped.
            if (projection && (m.kind === 'batch' || !projection.keeps(m))) {
              const projected = m.kind === 'batch' ? projection.batch(m, (n) => readPool.acquire(n)) : undefined;
              if (stored.prefixed) readPool.release(stored.prefixed);
              if (!projected) continue;
              m = projected;
            }
            bytes += m.header.length + bodyLength(m);
            if (m.kind === 'batch') batches++;
            if (splitter) {
              if (m.kind === 'dictionary') dictionaries.push(m);
              const parts = splitter.needsSplit(m) ? splitter.split(schemaHeader, dictionaries, m) : undefined;
              if (parts) {
                for (const p of parts) await write(p);
                continue;
              }
            }
            const { prefixed } = m;
            if (!prefixed) await write(m);
            // Once the bytes are on the socket, a buffer read for this call goes back to the pool.
            else
              await write(new PrefixedFlightData(prefixed, m.prefixedRest), (err) => err || readPool.release(prefixed));
          }
          annotate(() => ({ 'tierflight.bytes': bytes, 'tierflight.batches': batches }));
          return true;
        } finally {
          lease.release();
        }
      }
    });
  };
}
