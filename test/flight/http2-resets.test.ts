import { flightPath } from '../../src/core/path.js';
import http2 from 'node:http2';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { flightData, RawFlightClient, sampleMessages } from '../helpers/raw-client.js';
import { MEMORY_ONLY, startTestServer, type TestServer } from '../helpers/server.js';

/**
 * HTTP/2 stream resets (see allowHonestCancels in src/flight/server.ts): a client that
 * cancels thousands of reads keeps its connection, and a rapid-reset flood still loses it.
 */
describe('HTTP/2 stream resets', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer(MEMORY_ONLY('256MiB'));
    const raw = new RawFlightClient(server.location);
    const { schema } = sampleMessages(1000, 1);
    const batch = sampleMessages(256 * 1024, 1).batches[0]!;
    const put = await raw.doPut([
      flightData({ descriptor: { type: 'PATH', path: ['resets/f'] }, header: schema.header }),
      ...Array.from({ length: 8 }, () => flightData(batch)),
    ]);
    expect(put.code).toBe(status.OK);
    raw.close();
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('a client that cancels 3,000 reads on one connection keeps it: every call ends CANCELLED', async () => {
    const raw = new RawFlightClient(server.location);
    const outcomes: Record<string, number> = {};
    await Promise.all(
      Array.from({ length: 8 }, async (_, worker) => {
        for (let i = worker; i < 3000; i += 8) {
          const stream = raw.doGetStream('resets/f');
          const code = await new Promise<number>((resolve) => {
            stream.once('data', () => stream.cancel());
            stream.on('error', (e: { code: number }) => resolve(e.code));
            stream.on('end', () => resolve(status.OK));
          });
          const key = status[code] ?? String(code);
          outcomes[key] = (outcomes[key] ?? 0) + 1;
        }
      }),
    );
    raw.close();
    expect(outcomes).toEqual({ CANCELLED: 3000 });
    await expect.poll(() => server.app.manager.lookup(flightPath(['resets/f'])).placed?.pins).toBe(0);
  });

  it('a rapid-reset flood (streams opened and reset at once, no reads) is still cut off with GOAWAY', async () => {
    const session = http2.connect(`http://127.0.0.1:${server.port}`);
    session.on('error', () => undefined);
    let goaway: number | undefined;
    session.on('goaway', (code: number) => (goaway = code));
    let sent = 0;
    const ticket = Buffer.from([0, 0, 0, 0, 10, 0x0a, 8, ...Buffer.from('resets/f')]); // gRPC prefix + Ticket
    while (goaway === undefined && sent < 100_000 && !session.destroyed) {
      const stream = session.request({
        ':method': 'POST',
        ':path': '/arrow.flight.protocol.FlightService/DoGet',
        'content-type': 'application/grpc',
        te: 'trailers',
      });
      stream.on('error', () => undefined);
      stream.end(ticket);
      stream.close(http2.constants.NGHTTP2_CANCEL);
      sent++;
      if (sent % 200 === 0) await new Promise((r) => setImmediate(r));
    }
    session.destroy();
    // Cut off by nghttp2's reset rate limit or, as streams pile up faster than they close,
    // by Node refusing streams beyond grpc.max_concurrent_streams: either way, GOAWAY.
    expect(goaway).toBeDefined();
    expect(sent).toBeLessThan(100_000);
    // Reads reset before their first write release the flight too.
    await expect
      .poll(() => server.app.manager.lookup(flightPath(['resets/f'])).placed?.pins, { timeout: 10_000 })
      .toBe(0);
  });
});
