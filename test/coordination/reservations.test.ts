import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FlightCallError, FlightClient } from '../../src/client/flight-client.js';
import { runPyClient } from '../helpers/python.js';
import { startRedis, type RedisServer } from '../helpers/redis.js';
import { freePort, spawnServer, startTestServer, type ServerProcess, type TestServer } from '../helpers/server.js';
import { until } from '../helpers/until.js';
import { GO_CLIENT } from '../setup/clients.js';
import { encapsulatedMessages } from '../../src/ipc/ipc-stream.js';

/**
 * Cache-fill coordination (DESIGN §6) through real clients, against each reservation
 * store: the herd (30 pyarrow clients race for one missing flight: one computes, all read
 * the same bytes), an owner that dies, a waiter that gives up, bounded waiters, flight
 * metadata, and PollFlightInfo from arrow-go.
 */
interface Herd {
  clients: number;
  computations: number;
  owners: number;
  waiters: number;
  failed: unknown[];
  same_bytes: boolean;
  all_equal: boolean;
  holders: string[];
  p99_after_put_ms: number;
  max_after_put_ms: number;
}

interface Meta {
  createdAt: string;
  updatedAt: string;
  owner: string | null;
}

/** 30 clients, one computation, 29 waiters served by its put, all reading the same bytes (figures printed for the notes). */
function expectOneComputation(herd: Herd, setting: string): void {
  console.log(
    `herd (${setting}): ${herd.clients} clients, ${herd.computations} computation(s), ${herd.waiters} waiters ` +
      `served by the put; after the put returned: p99 ${herd.p99_after_put_ms.toFixed(1)} ms, ` +
      `max ${herd.max_after_put_ms.toFixed(1)} ms`,
  );
  expect(herd).toMatchObject({
    clients: 30,
    computations: 1,
    owners: 1,
    waiters: 29,
    failed: [],
    same_bytes: true,
    all_equal: true,
  });
}

/**
 * What `owner-dies` reports when the handover works: the second client was held, its wait
 * ended with the reservation (1 s heartbeat x 3), not after its 20 s, with NOT_FOUND; then it
 * acquired the path, computed and put it.
 */
function expectHandover(out: Record<string, unknown>): void {
  expect(out).toMatchObject({
    first: 'acquired',
    held: 'held',
    held_by: 'dies',
    wait_ended_with: 'ArrowKeyError',
    second_reserve: 'acquired',
    equal: true,
    metadata: { owner: 'second' },
  });
  expect(out.waited_s).toBeGreaterThanOrEqual(2.5);
  expect(out.waited_s).toBeLessThan(10);
}

let redis: RedisServer;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
});

const STORES = [
  { name: 'memory', yaml: () => 'reservations:\n  store: { type: memory }\n' },
  {
    name: 'redis',
    yaml: () => `reservations:\n  store: { type: redis, url: "${redis.url}", keyPrefix: "t${Date.now()}:" }\n`,
  },
];

describe.each(STORES)('cache-fill reservations with the $name store', (store) => {
  let server: TestServer;
  let dir: string;
  let client: FlightClient;
  let config: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'tierflight-reservations-'));
    config = `storageTypes:
  memory: { capacity: 256MiB }
durableStores:
  - { id: files, type: filesystem, path: ${dir}/store }
storageClasses:
  - name: durable
    prefix: kept
    durability: strong
    durableStore: files
    tiers: [{ storage: memory }]
  - name: default
    prefix: ""
    tiers: [{ storage: memory }]
${store.yaml()}  maxWaiters: 40
`;
    server = await startTestServer(config, { server: '  maxEndpointBytes: 256KiB\n' });
    client = new FlightClient(server.location);
  });
  afterAll(async () => {
    client?.close();
    await server?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('30 clients race for one missing flight: one computes, 29 wait for its put, all read the same bytes', async () => {
    const herd = await runPyClient<Herd>('herd', server.location, [
      '--script',
      JSON.stringify({ path: `herd/${store.name}`, clients: 30, compute_ms: 500, wait_ms: 20_000 }),
    ]);
    expectOneComputation(herd, `${store.name} store`);
    expect(herd.holders).toHaveLength(1);
    // The put released the owner's reservation: the path is free again.
    expect(await client.action('reserve', { path: `herd/${store.name}`, owner: 'after', heartbeatSeconds: 5 })).toEqual(
      [expect.objectContaining({ status: 'acquired', owner: 'after' })],
    );
    const metrics = await server.app.metrics.registry.metrics();
    expect(metrics).toMatch(/^tierflight_reservation_herd_size_sum 29$/m);
    expect(metrics).toMatch(/^tierflight_reservations_total\{outcome="held"\} 29$/m);
    expect(metrics).toMatch(/^tierflight_reservation_wait_seconds_count\{outcome="landed"\} 29$/m);
    expect(metrics).toMatch(/^tierflight_reservation_releases_total\{by="put",outcome="released"\} 1$/m);
  });

  it('an owner that dies hands over once its heartbeat lapses; the next owner computes and puts', async () => {
    const out = await runPyClient<Record<string, unknown>>('owner-dies', server.location, [
      '--script',
      JSON.stringify({ path: `dies/${store.name}`, heartbeat: 1, wait_ms: 20_000 }),
    ]);
    expectHandover(out);
  });

  it('DoGet with x-tierflight-wait-ms on a reserved path gets the flight once its owner puts it', async () => {
    const out = await runPyClient<{ equal: boolean; waited_s: number }>('get-wait', server.location, [
      '--path',
      `get-wait/${store.name}`,
    ]);
    expect(out.equal).toBe(true);
    expect(out.waited_s).toBeGreaterThanOrEqual(0.25);
    expect(out.waited_s).toBeLessThan(10);
  });

  it('a waiter whose client gives up frees its slot', async () => {
    const out = await runPyClient<{ error: string; seconds: number }>('wait-cancel', server.location, [
      '--path',
      `cancel/${store.name}`,
    ]);
    expect(out.error).toBe('FlightTimedOutError');
    expect(out.seconds).toBeLessThan(5);
    await until('the waiter to be released', () => server.app.reservations.waiterCount === 0);
    const metrics = await server.app.metrics.registry.metrics();
    expect(metrics).toMatch(/^tierflight_reservation_waiters 0$/m);
  });

  it('bounds the waiters: past reservations.maxWaiters a wait is RESOURCE_EXHAUSTED, and a wait on an unreserved path answers at once', async () => {
    const p = `bounded/${store.name}`;
    await client.action('reserve', { path: p, owner: 'slow', heartbeatSeconds: 60 });
    const wait = { 'x-tierflight-wait-ms': '30000' };
    const waiting = Array.from({ length: 40 }, () => client.getFlightInfo(p, wait).catch((e: unknown) => e));
    await until('40 waiters', () => server.app.reservations.waiterCount === 40);
    const refused = await client.getFlightInfo(p, wait).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(FlightCallError);
    expect(refused).toMatchObject({ code: status.RESOURCE_EXHAUSTED });
    expect((refused as Error).message).toMatch(/reservations\.maxWaiters: 40/);
    // Releasing without a put wakes them all: they answer NOT_FOUND at once.
    expect(await client.action('release', { path: p, owner: 'slow' })).toEqual([{ released: true }]);
    for (const r of await Promise.all(waiting)) expect(r).toMatchObject({ code: status.NOT_FOUND });
    const started = Date.now();
    expect(await client.getFlightInfo('never/reserved', wait).catch((e: unknown) => e)).toMatchObject({
      code: status.NOT_FOUND,
    });
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('answers reserve and release exactly as DESIGN §6 says', async () => {
    const p = `verbs/${store.name}`;
    const [a] = await client.action<{ status: string; owner: string; expiresAt: string }>('reserve', {
      path: `/${p}`,
      owner: 'alice',
      heartbeatSeconds: 10,
    });
    expect(a).toMatchObject({ status: 'acquired', owner: 'alice' });
    const ttl = Date.parse(a!.expiresAt) - Date.now();
    expect(ttl).toBeGreaterThan(25_000); // 10 s x graceMultiplier 3
    expect(ttl).toBeLessThanOrEqual(30_000);
    const [held] = await client.action('reserve', { path: p, owner: 'bob', heartbeatSeconds: 10 });
    expect(held).toEqual({ status: 'held', owner: 'alice', expiresAt: a!.expiresAt });
    // heartbeatSeconds is capped at maxHeartbeat (5m): the extension lasts 15 min, not 3 h.
    const [extended] = await client.action<{ expiresAt: string }>('reserve', {
      path: p,
      owner: 'alice',
      heartbeatSeconds: 3600,
    });
    expect(Date.parse(extended!.expiresAt) - Date.now()).toBeLessThanOrEqual(15 * 60_000);
    expect(Date.parse(extended!.expiresAt) - Date.now()).toBeGreaterThan(14 * 60_000);
    // A put by the owner that fails keeps the reservation; releasing it is then the owner's call.
    const { tableFromArrays, tableToIPC } = await import('apache-arrow');
    const [schema] = encapsulatedMessages(tableToIPC(tableFromArrays({ v: Int32Array.of(1) }), 'stream'));
    const broken = client.doPut(p, [schema!, { header: Buffer.from('not an IPC message'), body: Buffer.alloc(0) }], {
      'x-tierflight-owner': 'alice',
    });
    await expect(broken).rejects.toMatchObject({ code: status.INVALID_ARGUMENT });
    expect((await client.action('reserve', { path: p, owner: 'bob', heartbeatSeconds: 10 }))[0]).toMatchObject({
      status: 'held',
      owner: 'alice',
    });
    expect(await client.action('release', { path: p, owner: 'bob' })).toEqual([{ released: false }]);
    expect(await client.action('release', { path: p, owner: 'alice' })).toEqual([{ released: true }]);
    expect(await client.action('release', { path: p, owner: 'alice' })).toEqual([{ released: true }]);
    for (const [body, message] of [
      [{ path: 'a//b', owner: 'x', heartbeatSeconds: 1 }, /empty path segment|empty segment/],
      [{ path: p, owner: '', heartbeatSeconds: 1 }, /owner must be a non-empty string/],
      [{ path: p, owner: 'x', heartbeatSeconds: 0 }, /heartbeatSeconds must be a positive number/],
      [{ path: p, owner: 'x' }, /needs "heartbeatSeconds"/],
    ] as const) {
      const err = await client.action('reserve', body).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: status.INVALID_ARGUMENT });
      expect((err as Error).message).toMatch(message);
    }
    const [stats] = await client.action<{ reservations: { store: string; live: number; waiters: number } }>('stats');
    expect(stats?.reservations).toMatchObject({ store: store.name, waiters: 0 });
  });

  it('keeps createdAt across overwrites, updatedAt and the owner in FlightInfo app_metadata, across restarts', async () => {
    const p = `kept/meta-${store.name}`;
    const stream = (await import('apache-arrow')).tableToIPC(
      (await import('apache-arrow')).tableFromArrays({ v: Int32Array.of(1, 2, 3) }),
      'stream',
    );
    await client.putStream(p, stream, { 'x-tierflight-owner': 'first' });
    const one = JSON.parse((await client.getFlightInfo(p)).appMetadata.toString()) as Meta;
    expect(one.owner).toBe('first');
    expect(one.createdAt).toBe(one.updatedAt);
    await new Promise((r) => setTimeout(r, 20));
    await client.putStream(p, stream, { 'x-tierflight-owner': 'second' });
    const two = JSON.parse((await client.getFlightInfo(p)).appMetadata.toString()) as Meta;
    expect(two.createdAt).toBe(one.createdAt);
    expect(Date.parse(two.updatedAt)).toBeGreaterThan(Date.parse(one.updatedAt));
    expect(two.owner).toBe('second');
    await client.putStream(`${p}-anonymous`, stream);
    const anonymous = JSON.parse((await client.getFlightInfo(`${p}-anonymous`)).appMetadata.toString()) as {
      owner: unknown;
    };
    expect(anonymous.owner).toBeNull();

    // A restart finds the flight in its durable store with the same metadata.
    client.close();
    await server.stop();
    server = await startTestServer(config, { server: '  maxEndpointBytes: 256KiB\n' });
    client = new FlightClient(server.location);
    const after = JSON.parse((await client.getFlightInfo(p)).appMetadata.toString()) as Meta;
    expect(after).toEqual(two);
  });

  it('arrow-go long-polls a reserved flight with PollFlightInfo while its owner puts it', async () => {
    const out = await new Promise<Record<string, { ok: boolean; error?: string; rows: number }>>((resolve, reject) => {
      execFile(GO_CLIENT, ['poll', server.location], { timeout: 120_000 }, (err, stdout, stderr) =>
        err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(JSON.parse(stdout)),
      );
    });
    expect(out.poll).toMatchObject({ ok: true, rows: 3 });
  });
});

describe('two Tierflight processes sharing one Redis and one durable store', () => {
  let dir: string;
  const servers: ServerProcess[] = [];
  const metricsUrls: string[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'tierflight-two-nodes-'));
    for (const node of ['a', 'b']) {
      const file = path.join(dir, `${node}.yaml`);
      await writeFile(
        file,
        `storageTypes:
  memory: { capacity: 256MiB }
durableStores:
  - { id: shared, type: filesystem, path: ${dir}/store }
storageClasses:
  - name: reports
    prefix: ""
    durability: strong
    durableStore: shared
    tiers: [{ storage: memory }]
reservations:
  store: { type: redis, url: "${redis.url}", keyPrefix: "two-nodes:" }
`,
      );
      const metricsPort = await freePort();
      await writeFile(file, `server:\n  metrics: 127.0.0.1:${metricsPort}\n${await readFile(file, 'utf8')}`);
      servers.push(await spawnServer(file));
      metricsUrls.push(`http://127.0.0.1:${metricsPort}/metrics`);
    }
  });
  afterAll(async () => {
    for (const s of servers) {
      s.process.kill('SIGTERM');
      await new Promise((resolve) => s.process.once('exit', resolve));
    }
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('30 clients over both nodes: one computes, the other node’s waiters get the flight from the shared store', async () => {
    const herd = await runPyClient<Herd>('herd', servers[0]!.location, [
      '--script',
      JSON.stringify({
        path: 'herd/two-nodes',
        clients: 30,
        compute_ms: 500,
        wait_ms: 20_000,
        locations: servers.map((s) => s.location),
      }),
    ]);
    expectOneComputation(herd, 'redis store, two processes');
  });

  it('an owner that dies on one node hands over to a client of the other node once its heartbeat lapses', async () => {
    const out = await runPyClient<Record<string, unknown>>('owner-dies', servers[0]!.location, [
      '--script',
      JSON.stringify({
        path: 'dies/two-nodes',
        heartbeat: 1,
        wait_ms: 20_000,
        locations: servers.map((s) => s.location),
      }),
    ]);
    expectHandover(out);
  });

  it('a waiter on one node whose client gives up frees its slot there', async () => {
    const out = await runPyClient<{ error: string; seconds: number }>('wait-cancel', servers[1]!.location, [
      '--path',
      'cancel/two-nodes',
      '--script',
      JSON.stringify({ reserve_at: servers[0]!.location }),
    ]);
    expect(out.error).toBe('FlightTimedOutError');
    await until('the waiter to be released', async () =>
      /^tierflight_reservation_waiters 0$/m.test(await (await fetch(metricsUrls[1]!)).text()),
    );
    expect(await (await fetch(metricsUrls[1]!)).text()).toMatch(
      /^tierflight_reservation_wait_seconds_count\{outcome="cancelled"\} 1$/m,
    );
  });

  it('a release on one node wakes the other node’s waiters at once', async () => {
    const [a, b] = servers.map((s) => new FlightClient(s.location));
    try {
      await a!.action('reserve', { path: 'released/x', owner: 'a', heartbeatSeconds: 60 });
      const started = Date.now();
      const waiting = b!.getFlightInfo('released/x', { 'x-tierflight-wait-ms': '30000' }).catch((e: unknown) => e);
      // The release must find a registered waiter on the other node, or it tests nothing.
      await until('the waiter to be registered on the other node', async () =>
        /^tierflight_reservation_waiters 1$/m.test(await (await fetch(metricsUrls[1]!)).text()),
      );
      expect(await a!.action('release', { path: 'released/x', owner: 'a' })).toEqual([{ released: true }]);
      expect(await waiting).toMatchObject({ code: status.NOT_FOUND });
      expect(Date.now() - started).toBeLessThan(5_000);
    } finally {
      a?.close();
      b?.close();
    }
  });
});

describe('reservations outside every storage class', () => {
  it('are refused as a put of the path would be', async () => {
    const server = await startTestServer(
      'storageTypes:\n  memory: { capacity: 16MiB }\nstorageClasses:\n  - { name: only, prefix: only, tiers: [{ storage: memory }] }\n',
    );
    const client = new FlightClient(server.location);
    try {
      const err = await client
        .action('reserve', { path: 'elsewhere/x', owner: 'me', heartbeatSeconds: 5 })
        .catch((e: unknown) => e);
      expect(err).toMatchObject({ code: status.INVALID_ARGUMENT });
      expect((err as Error).message).toMatch(/no storage class matches flight "elsewhere\/x"/);
      expect(await client.action('reserve', { path: 'only/x', owner: 'me', heartbeatSeconds: 5 })).toEqual([
        expect.objectContaining({ status: 'acquired' }),
      ]);
    } finally {
      client.close();
      await server.stop();
    }
  });
});
