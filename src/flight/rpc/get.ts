import type { ServerWritableStream } from '@grpc/grpc-js';
import { BufferPool } from '../../core/buffer-pool.js';
import type { Frame } from '../../ipc/frame.js';
import { EMPTY, gone, streamOut, type RpcContext } from '../call.js';
import { PrefixedFlightData, type OutgoingFlightData } from '../flight-data-codec.js';
import { decodeTicket } from '../ticket.js';
import { waitIfReserved } from './wait.js';
import { authorize } from '../guard.js';
import { flightPath } from '../../core/path.js';

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
      // Parsed once; the checks and the lease below take it as is.
      const path = flightPath(ticket.path);
      authorize(call, path, 'read', ctx.denied);
      await waitIfReserved(ctx, path, call);
      // Not held here: restored from the durable store, or NOT_FOUND naming its owners.
      await ctx.owners.readHere(path, manager.route(path).config.replicas);
      const lease = await manager.open(path, ticket.version);
      try {
        const version = lease.version;
        const messages = version.messagesFor(ticket.range);
        await write({ header: version.schemaHeader, body: EMPTY });
        const dictionaries: Frame[] = [];
        for await (const m of lease.read(messages, readPool)) {
          if (gone(call)) return;
          if (splitter) {
            if (m.kind === 'dictionary') dictionaries.push(m);
            const parts = splitter.needsSplit(m) ? splitter.split(version.schemaHeader, dictionaries, m) : undefined;
            if (parts) {
              for (const p of parts) await write(p);
              continue;
            }
          }
          const { prefixed } = m;
          if (!prefixed) await write(m);
          // Once the bytes are on the socket, a buffer read for this call goes back to the pool.
          else await write(new PrefixedFlightData(prefixed), (err) => err || readPool.release(prefixed));
        }
      } finally {
        lease.release();
      }
    });
  };
}
