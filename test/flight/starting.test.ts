import net from 'node:net';
import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { startNode, type RunningNode } from '../../src/node/start.js';
import { parseConfigText } from '../../src/config/load.js';
import { silentLogger } from '../../src/core/log.js';
import { encodeRequest, RawFlightClient } from '../helpers/raw-client.js';
import { freePort } from '../helpers/server.js';

/**
 * A server answers calls only once it is ready: while it still recovers durable flights
 * (here from a store that accepts connections and never answers), every call gets
 * UNAVAILABLE rather than a wrong NOT_FOUND or a write into a tier about to be wiped.
 */
describe('a server still starting', () => {
  it('answers every call UNAVAILABLE until it is ready, then serves', async () => {
    const sockets = new Set<net.Socket>();
    const silent = net.createServer((s) => sockets.add(s)).listen(0, '127.0.0.1');
    await new Promise((r) => silent.once('listening', r));
    const storePort = (silent.address() as net.AddressInfo).port;
    const port = await freePort();
    const config = parseConfigText(
      `server:\n  listen: 127.0.0.1:${port}\n` +
        `durableStores:\n  - { id: s3, type: s3, bucket: b, region: us-east-1, endpoint: http://127.0.0.1:${storePort}, forcePathStyle: true }\n` +
        `storageTypes:\n  memory: { capacity: 16MiB }\n` +
        `storageClasses:\n  - { name: d, prefix: "", durability: weak, durableStore: s3, tiers: [{ storage: memory }] }\n`,
      'starting.yaml',
    );
    process.env.AWS_ACCESS_KEY_ID ??= 'test';
    process.env.AWS_SECRET_ACCESS_KEY ??= 'test';
    let app: RunningNode | undefined;
    const starting = startNode(config, silentLogger).then((a) => (app = a));
    const raw = new RawFlightClient(`grpc://127.0.0.1:${port}`);
    try {
      // The Flight port is bound before the flights are recovered.
      let out = await raw.unary('GetFlightInfo', encodeRequest.descriptor({ type: 'PATH', path: ['x'] }));
      for (let i = 0; out.code === status.UNAVAILABLE && /connect|No connection/i.test(out.details) && i < 100; i++) {
        await new Promise((r) => setTimeout(r, 50));
        out = await raw.unary('GetFlightInfo', encodeRequest.descriptor({ type: 'PATH', path: ['x'] }));
      }
      expect(out).toMatchObject({ code: status.UNAVAILABLE, details: expect.stringMatching(/Tierflight is starting/) });
      expect(app).toBeUndefined();
      // The store hangs up: recovery fails at once, the server serves without it.
      for (const s of sockets) s.destroy();
      silent.close();
      await starting;
      const after = await raw.unary('GetFlightInfo', encodeRequest.descriptor({ type: 'PATH', path: ['x'] }));
      expect(after).toMatchObject({
        code: status.UNAVAILABLE,
        details: expect.stringMatching(/cannot be reached yet/),
      });
      expect(app?.manager.degradedStores).toEqual(['s3']);
    } finally {
      raw.close();
      silent.close();
      await (await starting.catch(() => undefined))?.stop();
    }
  });
});
