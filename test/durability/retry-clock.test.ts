import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import type { Moto } from '../helpers/moto.js';
import { runPyClient } from '../helpers/python.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { startProxiedMoto, type TcpProxy } from '../helpers/tcp-proxy.js';
import { until } from '../helpers/until.js';

/**
 * Retries wait on the injected clock (issue 12): a weak upload that failed while the store
 * was cut retries after its backoff on the server's clock, so a test moves time instead of
 * sleeping. The store is moto behind a TCP proxy.
 */
const BUCKET = 'tierflight-retry-clock';
let moto: Moto;
let proxy: TcpProxy;
let server: TestServer | undefined;

beforeAll(async () => {
  ({ moto, proxy } = await startProxiedMoto(BUCKET));
});
afterAll(async () => {
  await server?.stop();
  await proxy?.close();
  await moto?.stop();
});

describe('retry backoff', () => {
  it('runs on the injected clock: a failed upload retries when the clock reaches its backoff', async () => {
    const clock = new ManualClock(Date.now());
    server = await startTestServer(
      `durableStores:
  - { id: s3, type: s3, bucket: ${BUCKET}, region: us-east-1, endpoint: ${proxy.endpoint}, forcePathStyle: true }
storageTypes:
  memory: { capacity: 16MiB }
storageClasses:
  - { name: weak, prefix: "", durability: weak, durableStore: s3, durablePrefix: tf/, tiers: [{ storage: memory }] }
`,
      { clock },
    );
    await proxy.down();
    const put = await runPyClient<{ ok: boolean }[]>('ops', server.location, [
      '--script',
      JSON.stringify([{ op: 'put', path: 'r/a', kib: 50, seed: 1 }]),
    ]);
    expect(put[0]?.ok).toBe(true);
    await until('the first upload attempt to fail', () => server!.app.manager.stats().durability.uploadFailures > 0);
    await proxy.up();
    // The store is back, but the retry waits for its backoff on the server's clock.
    await new Promise((r) => setTimeout(r, 1500));
    expect(await moto.keys(BUCKET, 'tf/')).toEqual([]);
    clock.advance(60_000);
    await until('the retried upload', async () => (await moto.keys(BUCKET, 'tf/')).includes('tf/r/a'), 10_000);
    // The store lists the object a moment before its answer reaches the server: then the queue drains.
    await until('the queue to drain', () => server!.app.manager.stats().durability.queueDepth === 0, 10_000);
    expect(server.app.manager.stats().durability.uploads).toBe(1);
  });
});
