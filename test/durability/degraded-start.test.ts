import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Moto } from '../helpers/moto.js';
import { runPyClient } from '../helpers/python.js';
import { freePort, startTestServer, type TestServer } from '../helpers/server.js';
import { startProxiedMoto, type TcpProxy } from '../helpers/tcp-proxy.js';
import { until } from '../helpers/until.js';

/**
 * A durable store that is down when the server starts (DESIGN §7): the server starts
 * anyway, serves the classes that do not need the store, says what is degraded, and finds
 * the store's flights once it is back. The store is a real S3-compatible server (moto)
 * behind a TCP proxy the test cuts.
 */
const BUCKET = 'tierflight-degraded';
let moto: Moto;
let proxy: TcpProxy;
let server: TestServer | undefined;
let metricsPort: number;

const config = () => `durableStores:
  - { id: s3main, type: s3, bucket: ${BUCKET}, region: us-east-1, endpoint: ${proxy.endpoint}, forcePathStyle: true }
storageTypes:
  memory: { capacity: 64MiB }
storageClasses:
  - { name: eph, prefix: e, tiers: [{ storage: memory }] }
  - { name: weak, prefix: w, durability: weak, durableStore: s3main, durablePrefix: tf/, tiers: [{ storage: memory }] }
  - { name: strong, prefix: s, durability: strong, durableStore: s3main, durablePrefix: tf/, tiers: [{ storage: memory }] }
`;
const start = () => startTestServer(config(), { server: `  metrics: 127.0.0.1:${metricsPort}\n` });
const ops = (s: TestServer, script: unknown[]) =>
  runPyClient<Record<string, unknown>[]>('ops', s.location, ['--script', JSON.stringify(script)]);
const readyz = async () => {
  const res = await fetch(`http://127.0.0.1:${metricsPort}/readyz`);
  return { status: res.status, text: await res.text() };
};
const degradedGauge = async () =>
  (await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text()).match(
    /^tierflight_durable_store_degraded\{store="s3main"\} (\d)$/m,
  )?.[1];

beforeAll(async () => {
  ({ moto, proxy } = await startProxiedMoto(BUCKET));
  metricsPort = await freePort();
});
afterAll(async () => {
  await server?.stop();
  await proxy?.close();
  await moto?.stop();
});

describe('a durable store down at start', () => {
  it('does not stop the server; its flights come back when the store does', async () => {
    // A durable flight from an earlier run.
    server = await start();
    await ops(server, [{ op: 'put', path: 'w/old', kib: 200, seed: 1 }]);
    await until('the upload', async () => (await moto.keys(BUCKET, 'tf/')).includes('tf/w/old'));
    await server.stop();

    await proxy.down();
    server = await start();
    expect(server.app.manager.degradedStores).toEqual(['s3main']);
    expect(await readyz()).toEqual({
      status: 200,
      text: 'ready\ndegraded: durable store "s3main" unreachable, recovering its flights\n',
    });
    expect(await degradedGauge()).toBe('1');
    const out = await ops(server, [
      { op: 'put', path: 'e/x', kib: 100, seed: 2 }, // a class without the store serves at once
      { op: 'check', path: 'e/x', kib: 100, seed: 2 },
      { op: 'check', path: 'w/old', kib: 200, seed: 1 }, // not found yet, and not "not found" either
      { op: 'put', path: 'w/new', kib: 100, seed: 3 }, // weak: acknowledged, the upload waits
      { op: 'put', path: 's/x', kib: 100, seed: 4 }, // strong: needs the store now
    ]);
    expect(out[0]).toMatchObject({ ok: true });
    expect(out[1]).toMatchObject({ ok: true, problems: [] });
    expect(out[2]).toMatchObject({ error: 'FlightUnavailableError' });
    expect(String(out[2]!.message)).toMatch(/durable store "s3main" cannot be reached yet/);
    expect(out[3]).toMatchObject({ ok: true });
    expect(out[4]).toMatchObject({ error: 'FlightUnavailableError' });

    await proxy.up();
    await until('the store to be recovered', () => server!.app.manager.degradedStores.length === 0, 30_000);
    expect(await readyz()).toEqual({ status: 200, text: 'ready\n' });
    expect(await degradedGauge()).toBe('0');
    const after = await ops(server, [
      { op: 'check', path: 'w/old', kib: 200, seed: 1 },
      { op: 'check', path: 'w/new', kib: 100, seed: 3 },
    ]);
    expect(after).toMatchObject([
      { ok: true, problems: [] },
      { ok: true, problems: [] },
    ]);
    await until('the queued upload', async () => (await moto.keys(BUCKET, 'tf/')).includes('tf/w/new'), 30_000);
    server.app.manager.checkAccounting();
  });

  it('a store that hangs (connections accepted, never answered) holds up only its own paths', async () => {
    await server?.stop();
    server = undefined;
    moto.pause(); // SIGSTOP: the kernel still accepts connections, nothing answers them
    try {
      const started = Date.now();
      server = await start();
      const startedIn = Date.now() - started;
      const out = await ops(server, [
        { op: 'put', path: 'e/hang', kib: 100, seed: 5 },
        { op: 'check', path: 'e/hang', kib: 100, seed: 5 },
        { op: 'check', path: 'w/old', kib: 200, seed: 1 },
      ]);
      // Serving within the few seconds a store gets to say anything, not the 30 s a slow listing may take.
      expect(startedIn).toBeLessThan(10_000);
      expect(out[0]).toMatchObject({ ok: true });
      expect(out[1]).toMatchObject({ ok: true, problems: [] });
      expect(out[2]).toMatchObject({ error: 'FlightUnavailableError' });
      expect(String(out[2]!.message)).toMatch(/durable store "s3main" cannot be reached yet/);
      expect(server.app.manager.degradedStores).toEqual(['s3main']);
    } finally {
      moto.resume();
    }
    await until('the store to be recovered', () => server!.app.manager.degradedStores.length === 0, 60_000);
    expect(await ops(server, [{ op: 'check', path: 'w/old', kib: 200, seed: 1 }])).toMatchObject([
      { ok: true, problems: [] },
    ]);
  });
});
