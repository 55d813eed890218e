import { flightPath } from '../../src/core/path.js';
import { writeFile, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { startMoto, type Moto } from '../helpers/moto.js';
import { runPyClient } from '../helpers/python.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';
import { until } from '../helpers/until.js';

// `durability: weak` end to end: pyarrow puts, Tierflight acknowledges once the memory
// copy is complete and writes the durable copy to a real S3-compatible server (moto) in
// the background, through a TCP proxy the tests cut to make the store unreachable.

type Op = Record<string, unknown>;
const BUCKET = 'weak-durability';
let moto: Moto;
let proxy: TcpProxy;
let dir: string;
let server: TestServer | undefined;

const config = (memory = '64MiB', ttl = '') => `durableStores:
  - { id: s3main, type: s3, bucket: ${BUCKET}, region: us-east-1, endpoint: ${proxy.endpoint}, forcePathStyle: true }
storageTypes:
  memory: { capacity: ${memory} }
storageClasses:
  - name: weak
    prefix: ""
    durability: weak
    durableStore: s3main
    durablePrefix: tf/
    ${ttl}
    tiers:
      - { storage: memory }
`;

const put = (p: string, kib: number, seed: number): Op => ({ op: 'put', path: p, kib, seed });
const check = (p: string, kib: number, seed: number): Op => ({ op: 'check', path: p, kib, seed });
const ops = <T = Record<string, unknown>[]>(s: TestServer, script: Op[]) =>
  runPyClient<T>('ops', s.location, ['--script', JSON.stringify(script)]);

const objects = (prefix = 'tf/'): Promise<string[]> => moto.keys(BUCKET, prefix);

/** One sample's value from Prometheus text, or NaN. */
function metric(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : NaN;
}

const drained = (s: TestServer) =>
  until('the upload queue to drain', () => s.app.manager.stats().durability.queueDepth === 0);

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tierflight-weak-'));
  moto = await startMoto();
  await moto.createBucket(BUCKET);
  proxy = await startTcpProxy(moto.port);
});
afterEach(async () => {
  await server?.stop();
  server = undefined;
  await proxy.up().catch(() => undefined);
});
afterAll(async () => {
  await proxy?.close();
  await moto?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('durability: weak (pyarrow client, moto)', () => {
  it('writes an Arrow IPC stream object per flight that pyarrow.ipc reads', async () => {
    server = await startTestServer(config());
    await ops(server, [put('w/a', 300, 1), put('w/b', 10, 2)]);
    await drained(server);
    expect(await objects('tf/w/')).toEqual(['tf/w/a', 'tf/w/b']);
    const body = await moto.client.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'tf/w/a' }));
    const file = path.join(dir, 'a.arrows');
    await writeFile(file, Buffer.from(await body.Body!.transformToByteArray()));
    const rows = await runPyClient<Record<string, number>>('ipc-objects', server.location, [
      '--script',
      JSON.stringify([file]),
    ]);
    expect(rows[file]).toBe(300 * 128);
  });

  it('restores an evicted flight from the store on the next read, once for concurrent readers', async () => {
    server = await startTestServer(config('1MiB'));
    const s = server;
    for (const [p, seed] of [
      ['e/a', 1],
      ['e/b', 2],
      ['e/c', 3],
    ] as const) {
      await ops(s, [put(p, 300, seed)]);
      await drained(s); // a weak flight is evictable once its durable copy exists
    }
    expect(s.app.manager.lookup(flightPath(['e/a'])).placed).toBeUndefined(); // evicted, still listed
    expect((await ops<string[][]>(s, [{ op: 'list', prefix: 'e' }]))[0]).toEqual(['e/a', 'e/b', 'e/c']);
    const [l1, l2] = await Promise.all([
      s.app.manager.open(flightPath(['e/a'])),
      s.app.manager.open(flightPath(['e/a'])),
    ]);
    expect(l1.version.placed).toBe(l2.version.placed); // one copy, from one restore (counted below)
    l1.release();
    l2.release();
    const restores = await s.app.metrics.registry.getSingleMetric('tierflight_restores_total')?.get();
    expect(restores?.values.reduce((a, v) => a + v.value, 0)).toBe(1);
    const out = await ops(s, [check('e/a', 300, 1)]);
    expect(out[0]).toMatchObject({ ok: true });
    s.app.manager.checkAccounting();
    const text = await s.app.metrics.registry.metrics();
    expect(metric(text, 'tierflight_restore_bytes_total{class="weak"}')).toBeGreaterThan(300 * 1024);
    expect(metric(text, 'tierflight_restore_seconds_count{class="weak"}')).toBe(1);
    expect(metric(text, 'tierflight_durable_write_bytes_total{class="weak",durability="weak"}')).toBeGreaterThan(
      900 * 1024,
    );
    expect(metric(text, 'tierflight_class_durable_bytes{class="weak"}')).toBeGreaterThan(900 * 1024);
  });

  it('finds durable flights after a restart and serves them bit-exact', async () => {
    server = await startTestServer(config());
    await ops(server, [put('r/a', 300, 7), put('r/b/c', 50, 8)]);
    await drained(server);
    await server.stop();
    server = await startTestServer(config());
    const out = await ops(server, [
      { op: 'list', prefix: 'r' },
      { op: 'info', path: 'r/a' },
      check('r/a', 300, 7),
      check('r/b/c', 50, 8),
    ]);
    expect(out[0]).toEqual(['r/a', 'r/b/c']);
    expect(out[1]).toMatchObject({ records: 300 * 128 });
    expect(out[2]).toMatchObject({ ok: true });
    expect(out[3]).toMatchObject({ ok: true });
  });

  it('keeps retrying while the store is unreachable and loses no acknowledged flight', async () => {
    server = await startTestServer(config());
    await proxy.down();
    const script = Array.from({ length: 20 }, (_, i) => put(`down/${i}`, 20, 100 + i));
    const acks = await ops(server, script);
    expect(acks.every((a) => a.ok === true)).toBe(true);
    await new Promise((r) => setTimeout(r, 700));
    const stats = server.app.manager.stats().durability;
    expect(stats.queueDepth).toBe(20);
    expect(stats.uploadFailures).toBeGreaterThan(0);
    const failures = metric(
      await server.app.metrics.registry.metrics(),
      'tierflight_durable_failures_total{class="weak",operation="upload",kind="transient"}',
    );
    expect(failures).toBeGreaterThan(0);
    await proxy.up();
    await drained(server);
    expect(await objects('tf/down/')).toEqual(script.map((o) => `tf/${o.path as string}`).sort());
    // Prove they are durable: a fresh server finds and serves every one.
    await server.stop();
    server = await startTestServer(config());
    const back = await ops(
      server,
      script.map((o, i) => check(o.path as string, 20, 100 + i)),
    );
    expect(back.filter((b) => b.ok !== true)).toEqual([]);
  });

  it('drains queued uploads on shutdown, and stops within the grace period when the store is down', async () => {
    server = await startTestServer(config());
    await proxy.down();
    await ops(server, [put('grace/a', 50, 1), put('grace/b', 50, 2)]);
    expect(server.app.manager.stats().durability.queueDepth).toBe(2);
    // The store comes back while the server shuts down: the queue drains before it exits.
    setTimeout(() => void proxy.up(), 300);
    await server.stop();
    server = undefined;
    expect(await objects('tf/grace/')).toEqual(['tf/grace/a', 'tf/grace/b']);

    // With the store gone for good, shutdown gives up after its grace (2 s in tests).
    server = await startTestServer(config());
    await proxy.down();
    await ops(server, [put('grace/c', 50, 3)]);
    const started = Date.now();
    await server.stop();
    server = undefined;
    expect(Date.now() - started).toBeLessThan(6_000);
  });

  it('deletes durable copies with delete and delete-prefix', async () => {
    server = await startTestServer(config());
    await ops(server, [put('d/x/1', 10, 1), put('d/x/2', 10, 2), put('d/y', 10, 3)]);
    await drained(server);
    const out = await ops<unknown[]>(server, [
      { op: 'action', type: 'delete-prefix', body: { prefix: 'd/x' } },
      { op: 'action', type: 'delete', body: { path: 'd/y' } },
    ]);
    expect(out).toEqual([[{ deleted: 2 }], [{ deleted: true }]]);
    await until('objects to be deleted', async () => (await objects('tf/d/')).length === 0);
    await server.stop();
    server = await startTestServer(config());
    expect((await ops<string[][]>(server, [{ op: 'list', prefix: 'd' }]))[0]).toEqual([]);
  });

  it('never serves an expired flight, deletes it from the store, and does not bring it back after a restart', async () => {
    const clock = new ManualClock(Date.now());
    server = await startTestServer(config('64MiB', 'ttl: 1m'), { clock });
    await ops(server, [put('t/a', 10, 1), put('t/b', 10, 2)]);
    await drained(server);
    clock.advance(61_000);
    const out = await ops(server, [{ op: 'get', path: 't/a' }]);
    expect(out[0]).toMatchObject({ error: 'ArrowKeyError' });
    await until('t/a to leave the store', async () => !(await objects('tf/t/')).includes('tf/t/a'));
    // t/b expired too but was never touched: a restarted server must not serve it either.
    await server.stop();
    server = await startTestServer(config('64MiB', 'ttl: 1m'), { clock });
    expect((await ops<string[][]>(server, [{ op: 'list', prefix: 't' }]))[0]).toEqual([]);
    await until('t/b to leave the store', async () => (await objects('tf/t/')).length === 0);
  });
});
