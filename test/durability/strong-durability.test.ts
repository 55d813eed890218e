import { flightPath } from '../../src/core/path.js';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ListMultipartUploadsCommand } from '@aws-sdk/client-s3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startMoto, type Moto } from '../helpers/moto.js';
import { runPyClient } from '../helpers/python.js';
import { spawnServer, startTestServer, type TestServer } from '../helpers/server.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';
import { PYTHON, ROOT } from '../setup/python-env.js';

// `durability: strong` end to end: a put is acknowledged only once the S3-compatible
// store (moto, behind a TCP proxy the tests cut) has the whole object.

type Op = Record<string, unknown>;
const BUCKET = 'strong-durability';
let moto: Moto;
let proxy: TcpProxy;
let dir: string;
let server: TestServer | undefined;

const config = (endpoint: string) => `durableStores:
  - { id: s3main, type: s3, bucket: ${BUCKET}, region: us-east-1, endpoint: ${endpoint}, forcePathStyle: true }
storageTypes:
  memory: { capacity: 256MiB }
storageClasses:
  - name: strong
    prefix: ""
    durability: strong
    durableStore: s3main
    durablePrefix: s/
    tiers:
      - { storage: memory }
`;

const put = (p: string, kib: number, seed: number, extra: Op = {}): Op => ({ op: 'put', path: p, kib, seed, ...extra });
const check = (p: string, kib: number, seed: number, extra: Op = {}): Op => ({
  op: 'check',
  path: p,
  kib,
  seed,
  ...extra,
});
const ops = <T = Record<string, unknown>[]>(location: string, script: Op[]) =>
  runPyClient<T>('ops', location, ['--script', JSON.stringify(script)]);

const objects = (prefix: string): Promise<string[]> => moto.keys(BUCKET, prefix);

const pendingUploads = async (): Promise<number> =>
  (await moto.client.send(new ListMultipartUploadsCommand({ Bucket: BUCKET }))).Uploads?.length ?? 0;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tierflight-strong-'));
  moto = await startMoto();
  await moto.createBucket(BUCKET);
  proxy = await startTcpProxy(moto.port);
});
afterEach(async () => {
  await server?.stop();
  server = undefined;
  await proxy.up();
});
afterAll(async () => {
  await proxy?.close();
  await moto?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('durability: strong (pyarrow client, moto)', () => {
  it('acknowledges a put only once the object is in the store', async () => {
    server = await startTestServer(config(proxy.endpoint));
    const out = await ops(server.location, [put('a/small', 20, 1), put('a/large', 20 * 1024, 2, { batch_kib: 1024 })]);
    expect(out.map((o) => o.ok)).toEqual([true, true]);
    // No waiting: the acknowledgement itself means durable.
    expect(await objects('s/a/')).toEqual(['s/a/large', 's/a/small']);
    expect(server.app.manager.stats().durability.queueDepth).toBe(0);
    const text = await server.app.metrics.registry.metrics();
    expect(text).toMatch(/^tierflight_durable_write_seconds_count\{class="strong",durability="strong"\} 2$/m);
    await server.stop();
    server = await startTestServer(config(proxy.endpoint));
    const back = await ops(server.location, [
      check('a/small', 20, 1),
      check('a/large', 20 * 1024, 2, { batch_kib: 1024 }),
    ]);
    expect(back.map((b) => b.problems)).toEqual([[], []]);
  });

  it('restores an evicted strong flight from the store on the next read', async () => {
    server = await startTestServer(config(proxy.endpoint).replace('capacity: 256MiB', 'capacity: 1MiB'));
    const out = await ops(server.location, [put('ev/a', 300, 11), put('ev/b', 300, 12), put('ev/c', 300, 13)]);
    expect(out.map((o) => o.ok)).toEqual([true, true, true]);
    // A strong flight is durable when acknowledged, so eviction may drop its memory copy at once.
    expect(server.app.manager.lookup(flightPath(['ev/a'])).placed).toBeUndefined();
    const back = await ops(server.location, [{ op: 'list', prefix: 'ev' }, check('ev/a', 300, 11)]);
    expect(back[0]).toEqual(['ev/a', 'ev/b', 'ev/c']);
    expect(back[1]).toMatchObject({ ok: true });
    expect(server.app.manager.lookup(flightPath(['ev/a'])).storage).toBe('memory');
    server.app.manager.checkAccounting();
  });

  it('fails with UNAVAILABLE when the store goes away mid-upload: nothing visible, no multipart upload left', async () => {
    server = await startTestServer(config(proxy.endpoint));
    const s = server;
    // 24 MiB in 48 batches, slowly, so the store is cut while parts are going out.
    const putting = ops(s.location, [
      put('b/big', 24 * 1024, 3, { batch_kib: 512, sleep: 0.02 }),
      { op: 'list', prefix: 'b' },
    ]);
    await new Promise((r) => setTimeout(r, 500));
    await proxy.down();
    const [result, listed] = await putting;
    expect(result).toMatchObject({ error: 'FlightUnavailableError' });
    expect(String(result?.message)).toMatch(/flight "b\/big": the durable store "s3main" did not take the flight/);
    expect(listed).toEqual([]);
    expect(s.app.manager.stats().storageTypes.memory).toMatchObject({ used: 0, reserved: 0 });
    await proxy.up();
    const deadline = Date.now() + 30_000;
    while ((await pendingUploads()) > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    expect(await pendingUploads()).toBe(0);
    expect(await objects('s/b/')).toEqual([]);
    const again = await ops(s.location, [put('b/after', 10, 4)]);
    expect(again[0]).toMatchObject({ ok: true });
  });

  it('streams a flight that fits no tier straight to the store and serves it from there (weak and strong)', async () => {
    const yaml =
      config(proxy.endpoint).replace(
        '    tiers:\n      - { storage: memory }\n',
        '    tiers:\n      - { storage: memory, maxFlightSize: 1MiB }\n',
      ) +
      `  - name: weakbig
    prefix: weakbig
    durability: weak
    durableStore: s3main
    durablePrefix: s/
    tiers:
      - { storage: memory, maxFlightSize: 1MiB }
`;
    server = await startTestServer(yaml);
    const out = await ops(server.location, [
      put('big/strong', 4096, 5),
      put('weakbig/x', 4096, 6),
      put('big/hinted', 4096, 7, { hint: 5 * 1024 * 1024 }),
      put('big/small', 100, 8),
      check('big/strong', 4096, 5),
      check('weakbig/x', 4096, 6),
      check('big/hinted', 4096, 7),
      check('big/small', 100, 8),
    ]);
    // On failure the diff shows which put or check failed and why.
    expect(out.map((o) => o.ok ?? o.message)).toEqual(Array(8).fill(true));
    // Acknowledged means in the store, also for the weak class when no tier could hold it.
    expect(await objects('s/')).toEqual(expect.arrayContaining(['s/big/strong', 's/weakbig/x', 's/big/hinted']));
    expect(server.app.manager.lookup(flightPath(['big/strong'])).placed).toBeUndefined();
    expect(server.app.manager.lookup(flightPath(['weakbig/x'])).placed).toBeUndefined();
    expect(server.app.manager.lookup(flightPath(['big/small'])).storage).toBe('memory');
    const text = await server.app.metrics.registry.metrics();
    expect(text).toMatch(/^tierflight_hits_total\{class="strong",storage="durable"\} 2$/m);
    expect(text).toMatch(/^tierflight_puts_total\{class="weakbig",storage="durable"\} 1$/m);
    server.app.manager.checkAccounting();
    expect(server.app.manager.stats().storageTypes.memory).toMatchObject({ reserved: 0 });
  });

  it('keeps every acknowledged flight when the server is killed with SIGKILL mid-stream', async () => {
    const file = path.join(dir, 'crash.yaml');
    await writeFile(file, config(moto.endpoint));
    const TOTAL = 400;
    const KILL_AFTER = 300;
    const script = Array.from({ length: TOTAL }, (_, i) => put(`crash/${i}`, 4 + (i % 5), 1000 + i));
    let child = await spawnServer(file);
    const acked: string[] = [];
    const client = spawn(
      PYTHON,
      [path.join(ROOT, 'test/py/flight_client.py'), 'put-many', child.location, '--script', JSON.stringify(script)],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let buffered = '';
    client.stdout.on('data', (d: Buffer) => {
      buffered += d.toString();
      let nl;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = JSON.parse(buffered.slice(0, nl)) as { acked?: string };
        buffered = buffered.slice(nl + 1);
        if (line.acked) acked.push(line.acked);
        if (acked.length === KILL_AFTER) child.process.kill('SIGKILL');
      }
    });
    await new Promise((resolve) => client.on('exit', resolve));
    expect(acked.length).toBeGreaterThanOrEqual(KILL_AFTER);
    expect(acked.length).toBeLessThan(TOTAL); // the kill landed mid-run
    child = await spawnServer(file);
    try {
      const checks = acked.map((p) => {
        const i = Number(p.split('/')[1]);
        return check(p, 4 + (i % 5), 1000 + i);
      });
      const back = await ops(child.location, checks);
      expect(back.filter((b) => b.ok !== true)).toEqual([]);
      expect(back.length).toBe(acked.length);
    } finally {
      child.process.kill('SIGKILL');
    }
  });
});
