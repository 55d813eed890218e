import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FlightClient, FlightCallError, FlightStatus } from '../../src/client/flight-client.js';
import { owners } from '../../src/cluster/placement.js';
import { tableFromArrays, tableFromIPC, tableToIPC } from 'apache-arrow';
import protobuf from 'protobufjs';
import { encapsulatedMessages } from '../../src/ipc/ipc-stream.js';
import { FROM_NODE_HEADER } from '../../src/flight/cluster-port.js';
import { startMoto, type Moto } from '../helpers/moto.js';
import { runPyClient } from '../helpers/python.js';
import { startRedis, type RedisServer } from '../helpers/redis.js';
import { freePort, spawnServer, type ServerProcess } from '../helpers/server.js';
import { until } from '../helpers/until.js';
import { TIERFLIGHT_CLI } from '../helpers/cli.js';
import { ROOT } from '../setup/python-env.js';
import { GO_CLIENT } from '../setup/clients.js';

const execFileAsync = promisify(execFile);

/**
 * Three Tierflight processes on loopback as one cluster (DESIGN §8): their own memory tiers,
 * one shared S3 bucket (the suite's moto server) and one Redis. pyarrow clients put through
 * any node and read where GetFlightInfo's endpoints point; every answer is checked against
 * the owners the test computes itself by rendezvous hashing.
 */
const NAMES = ['node-a', 'node-b', 'node-c'] as const;
type Name = (typeof NAMES)[number];

interface Put {
  op: 'put';
  path: string;
  kib: number;
  seed: number;
}

describe('a three-node cluster', () => {
  let dir: string;
  let moto: Moto;
  let redis: RedisServer;
  const ports = {} as Record<Name, number>;
  const nodes = {} as Record<Name, ServerProcess>;
  const files = {} as Record<Name, string>;
  const location = (n: Name) => `grpc+tcp://127.0.0.1:${ports[n]}`;
  const members = () => NAMES.map((name) => ({ name, location: location(name) }));
  const ownerOf = (p: string, live: readonly Name[] = NAMES) =>
    owners(
      p,
      members().filter((m) => live.includes(m.name)),
      1,
    )[0]!.name as Name;

  const config = (self: Name) => `server:
  shutdownGrace: 2s
storageTypes:
  memory: { capacity: 256MiB }
durableStores:
  - { id: s3, type: s3, bucket: cluster, endpoint: "${moto.endpoint}", forcePathStyle: true }
storageClasses:
  - name: durable
    prefix: durable
    durability: strong
    durableStore: s3
    tiers: [{ storage: memory }]
  - { name: replicated, prefix: hot, replicas: 2, tiers: [{ storage: memory }] }
  - { name: cache, prefix: "", tiers: [{ storage: memory }] }
reservations:
  store: { type: redis, url: "${redis.url}" }
cluster:
  self: ${self}
  probeEvery: 300ms
  members:
${members()
  .map((m) => `    - { name: ${m.name}, location: "${m.location}" }`)
  .join('\n')}
`;

  /** The paths a node holds itself (a call marked as from another node answers locally). */
  const localPaths = async (n: Name, prefix = ''): Promise<string[]> => {
    const client = new FlightClient(location(n));
    try {
      const infos = await client.listFlightMessages(prefix, { [FROM_NODE_HEADER]: 'test' });
      return infos.map((i) => i.flight_descriptor.path.join('/')).sort();
    } finally {
      client.close();
    }
  };

  const start = (n: Name) => spawnServer(files[n], { port: ports[n] }).then((s) => (nodes[n] = s));

  interface Report {
    self: string;
    members: { name: string; state: string; flights?: number }[];
  }
  const report = async (n: Name): Promise<Report> => {
    const client = new FlightClient(location(n));
    try {
      return (await client.action<Report>('cluster'))[0]!;
    } finally {
      client.close();
    }
  };
  /** Until every live node sees every member in `up` as up (nodes started together probe each other a while). */
  const settled = (up: readonly Name[] = NAMES) =>
    until(
      `nodes ${up.join(', ')} to see each other up`,
      async () => {
        for (const n of up) {
          const seen = await report(n).catch(() => undefined);
          if (!seen) return false;
          for (const m of seen.members) {
            const want = m.name === n ? 'self' : up.includes(m.name as Name) ? 'up' : 'down';
            if (m.state !== want) return false;
          }
        }
        return true;
      },
      20_000,
    );

  beforeAll(async () => {
    [moto, redis] = await Promise.all([startMoto(), startRedis()]);
    await moto.createBucket('cluster');
    dir = await mkdtemp(path.join(os.tmpdir(), 'tierflight-cluster-'));
    for (const n of NAMES) ports[n] = await freePort();
    for (const n of NAMES) {
      files[n] = path.join(dir, `${n}.yaml`);
      await writeFile(files[n], config(n));
    }
    await Promise.all(NAMES.map(start));
    await settled();
  }, 120_000);

  afterAll(async () => {
    for (const n of NAMES) nodes[n]?.process.kill('SIGKILL');
    await moto?.stop();
    await redis?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const cachePuts: Put[] = Array.from({ length: 60 }, (_, i) => ({
    op: 'put',
    path: `cache/day-${i % 7}/part-${i}`,
    kib: 32,
    seed: i,
  }));

  it('forwards every put to its owner, places alike from every node, and spreads flights evenly', async () => {
    // All put through node-a, a pyarrow client each; two thirds are forwarded.
    const acked = await runPyClient<{ ok?: boolean; error?: string }[]>('ops', location('node-a'), [
      '--script',
      JSON.stringify(cachePuts),
    ]);
    expect(acked.filter((a) => !a.ok)).toEqual([]);
    const held = Object.fromEntries(await Promise.all(NAMES.map(async (n) => [n, await localPaths(n, 'cache')])));
    for (const n of NAMES) {
      const mine = cachePuts.filter((p) => ownerOf(p.path) === n).map((p) => p.path);
      expect(held[n]).toEqual([...mine].sort());
      expect(mine.length).toBeGreaterThanOrEqual(10); // 20 each on average
    }
    // GetFlightInfo from every node points at the owner, and pyarrow reads there bit-exact.
    for (const n of NAMES) {
      const client = new FlightClient(location(n));
      for (const p of cachePuts.slice(0, 15)) {
        const info = await client.getFlightInfo(p.path);
        expect(info.endpoints[0]?.locations).toEqual([location(ownerOf(p.path))]);
      }
      client.close();
      const checks = await runPyClient<{ ok: boolean; problems: string[] }[]>('ops', location(n), [
        '--script',
        JSON.stringify(cachePuts.slice(0, 15).map((p) => ({ ...p, op: 'check' }))),
      ]);
      expect(checks.filter((c) => !c.ok)).toEqual([]);
    }
  });

  it('tierflight admin cluster shows every member up and the flights each holds', async () => {
    const [node, ...cli] = TIERFLIGHT_CLI as [string, ...string[]];
    const { stdout } = await execFileAsync(node, [...cli, 'admin', '--server', location('node-b'), 'cluster'], {
      cwd: ROOT,
    });
    const lines = stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^member\s+state\s+location\s+flights\s+bytes/);
    for (const n of NAMES) {
      const held = cachePuts.filter((p) => ownerOf(p.path) === n).length;
      const state = n === 'node-b' ? 'self' : 'up';
      expect(lines.find((l) => l.startsWith(n))).toMatch(
        new RegExp(`^${n}\\s+${state}\\s+${location(n).replace(/[+.]/g, '\\$&')}\\s+${held}\\s+\\d+`),
      );
    }
    const json = await execFileAsync(node, [...cli, 'admin', '--server', location('node-c'), '--json', 'cluster'], {
      cwd: ROOT,
    });
    const report = JSON.parse(json.stdout) as { self: string; members: { name: string; flights: number }[] };
    expect(report.self).toBe('node-c');
    expect(report.members.reduce((n, m) => n + m.flights, 0)).toBe(cachePuts.length);
  });

  it('copies a flight of a class with replicas: 2 to its second owner, and both serve it', async () => {
    const puts: Put[] = Array.from({ length: 12 }, (_, i) => ({
      op: 'put',
      path: `hot/p${i}`,
      kib: 48,
      seed: 300 + i,
    }));
    const acked = await runPyClient<{ ok?: boolean }[]>('ops', location('node-b'), ['--script', JSON.stringify(puts)]);
    expect(acked.filter((a) => !a.ok)).toEqual([]);
    const pair = (p: string) => owners(p, members(), 2).map((m) => m.name as Name);
    await until(
      'every flight on both of its owners',
      async () => {
        for (const n of NAMES) {
          const want = puts
            .filter((p) => pair(p.path).includes(n))
            .map((p) => p.path)
            .sort();
          if (JSON.stringify(await localPaths(n, 'hot')) !== JSON.stringify(want)) return false;
        }
        return true;
      },
      20_000,
    );
    for (const p of puts) {
      const [first, second] = pair(p.path) as [Name, Name];
      const info = await new FlightClient(location('node-a')).getFlightInfo(p.path);
      expect(info.endpoints[0]?.locations).toEqual([location(first), location(second)]);
      // Each owner's copy reads back the same bytes.
      const fromFirst = new FlightClient(location(first));
      const fromSecond = new FlightClient(location(second));
      const [a, b] = await Promise.all([
        fromFirst.getStream(p.path, undefined, { [FROM_NODE_HEADER]: 'test' }),
        fromSecond.getStream(p.path, undefined, { [FROM_NODE_HEADER]: 'test' }),
      ]);
      fromFirst.close();
      fromSecond.close();
      expect(b.equals(a)).toBe(true);
      expect(a.length).toBeGreaterThan(48 * 1024);
      // A client following either location of the endpoint with its ticket gets the flight:
      // the replica's copy is the primary's version (same tag), not a version of its own.
      const viaTicket = await Promise.all(
        info.endpoints[0]!.locations.map(async (location) => {
          const client = new FlightClient(location);
          try {
            const bodies: Buffer[] = [];
            for await (const m of client.doGet(info.endpoints[0]!.ticket)) bodies.push(m.header, m.body);
            return Buffer.concat(bodies);
          } finally {
            client.close();
          }
        }),
      );
      expect(viaTicket).toHaveLength(2);
      expect(viaTicket[1]!.equals(viaTicket[0]!)).toBe(true);
      expect(viaTicket[0]!.length).toBeGreaterThan(48 * 1024);
    }
  });

  it('renews an endpoint (RenewFlightEndpoint) at a node that is not its owner, and CancelFlightInfo reaches a wait on another node', async () => {
    const proto = new protobuf.Root().loadSync(path.join(ROOT, 'proto/flight.proto'), { keepCase: true });
    const type = (name: string) => proto.lookupType(`arrow.flight.protocol.${name}`);
    const encode = (name: string, value: object) =>
      Buffer.from(type(name).encode(type(name).fromObject(value)).finish());
    const decode = (name: string, body: Buffer) =>
      type(name).toObject(type(name).decode(body), { longs: Number, defaults: true }) as Record<string, unknown>;

    const p = cachePuts.find((c) => ownerOf(c.path) === 'node-b')!.path;
    const infoClient = new FlightClient(location('node-a'));
    const endpoint = (await infoClient.flightInfoMessage(p.split('/'))).endpoint[0]!;
    await new Promise((r) => setTimeout(r, 1100));
    const elsewhere = new FlightClient(location('node-c'));
    const renewedBody: Buffer[] = [];
    for await (const b of elsewhere.doAction('RenewFlightEndpoint', encode('RenewFlightEndpointRequest', { endpoint })))
      renewedBody.push(b);
    const renewed = decode('FlightEndpoint', renewedBody[0]!) as unknown as {
      ticket: { ticket: Buffer };
      expiration_time: { seconds: number };
    };
    expect(Buffer.from(renewed.ticket.ticket).equals(endpoint.ticket.ticket)).toBe(true);
    expect(renewed.expiration_time.seconds).toBeGreaterThan(endpoint.expiration_time!.seconds);

    // A GetFlightInfo waiting for a reserved path (at its owner) ends when CancelFlightInfo reaches another node.
    const waitPath = 'cache/cancel-me';
    await infoClient.action('reserve', { path: waitPath, owner: 'o', heartbeatSeconds: 30 });
    const waiter = new FlightClient(location('node-a'));
    const started = Date.now();
    const waited = waiter.getFlightInfo(waitPath, { 'x-tierflight-wait-ms': '20000' }).catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 500));
    const cancelBody: Buffer[] = [];
    const request = encode('CancelFlightInfoRequest', { info: { flight_descriptor: { type: 1, path: [waitPath] } } });
    for await (const b of elsewhere.doAction('CancelFlightInfo', request)) cancelBody.push(b);
    expect(decode('CancelFlightInfoResult', cancelBody[0]!).status).toBe(1); // CANCEL_STATUS_CANCELLED
    const err = await waited;
    expect(err).toMatchObject({ code: FlightStatus.CANCELLED });
    expect(Date.now() - started).toBeLessThan(10_000);
    for (const c of [infoClient, elsewhere, waiter]) c.close();
  });

  it("lists every member's flights from any node; DoGet elsewhere names the owner", async () => {
    for (const n of NAMES) {
      const client = new FlightClient(location(n));
      const listed = (await client.listFlights('cache')).map((f) => f.path.join('/')).sort();
      expect(listed).toEqual(cachePuts.map((p) => p.path).sort());
      client.close();
    }
    // A ticket taken to a node that does not hold a non-durable flight: NOT_FOUND naming its owner.
    const p = cachePuts.find((c) => ownerOf(c.path) === 'node-b')!.path;
    const info = await new FlightClient(location('node-b')).getFlightInfo(p);
    const wrong = new FlightClient(location('node-c'));
    const err = await (async () => {
      for await (const _ of wrong.doGet(info.endpoints[0]!.ticket)) void _;
    })().catch((e: unknown) => e);
    wrong.close();
    expect(err).toBeInstanceOf(FlightCallError);
    // …and saying to go to another node, in the x-tierflight-retry trailer and in words.
    expect(err).toMatchObject({ code: FlightStatus.NOT_FOUND, retry: { where: 'other' } });
    expect(
      (err as FlightCallError).details.endsWith(`its owner node-b (${location('node-b')}) [retry on another node]`),
    ).toBe(true);
  });

  it('reserves through the shared Redis: a waiter on one node gets the flight its owner put through another', async () => {
    const p = Array.from({ length: 50 }, (_, i) => `res/p-${i}`).find((x) => ownerOf(x) === 'node-b')!;
    const a = new FlightClient(location('node-a'));
    const c = new FlightClient(location('node-c'));
    try {
      const [mine] = await a.action('reserve', { path: p, owner: 'alice', heartbeatSeconds: 30 });
      expect(mine).toMatchObject({ status: 'acquired' });
      const [theirs] = await c.action('reserve', { path: p, owner: 'carol', heartbeatSeconds: 30 });
      expect(theirs).toMatchObject({ status: 'held', owner: 'alice' });
      // PollFlightInfo through node-c, answered by the owner: not there yet, poll again.
      const poll = await c.pollInfoMessage(p.split('/'), { 'x-tierflight-wait-ms': '100' });
      expect(poll.info ?? null).toBeNull();
      expect(poll.flight_descriptor?.path).toEqual(p.split('/'));
      // A waiter on node-c; the owner's put through node-a lands on node-b and wakes it.
      const waiting = c.getFlightInfo(p, { 'x-tierflight-wait-ms': '20000' });
      const ipc = tableToIPC(tableFromArrays({ v: Float64Array.from([1, 2, 3, 4]) }), 'stream');
      await a.putStream(p, ipc, { 'x-tierflight-owner': 'alice' });
      const info = await waiting;
      expect(info.totalRecords).toBe(4);
      expect(info.endpoints[0]?.locations).toEqual([location('node-b')]);
      // The landed put released alice's reservation (in Redis): carol may reserve now.
      const [after] = await c.action('reserve', { path: `${p}-next`, owner: 'carol', heartbeatSeconds: 30 });
      expect(after).toMatchObject({ status: 'acquired' });
      // pin through node-c pins it where it is held.
      expect(await c.action('pin', { path: p })).toEqual([{ pinned: true }]);
      const b = new FlightClient(location('node-b'));
      const [stats] = await b.action<{ pinned: number }>('stats');
      b.close();
      expect(stats?.pinned).toBe(1);
      expect(await c.action('unpin', { path: p })).toEqual([{ unpinned: true }]);
    } finally {
      a.close();
      c.close();
    }
  });

  it("passes the owner's status back through a forwarded put, and stores nothing of a refused one", async () => {
    const p = Array.from({ length: 50 }, (_, i) => `bad/p-${i}`).find((x) => ownerOf(x) === 'node-c')!;
    const ipc = tableToIPC(tableFromArrays({ v: Int32Array.from([1, 2, 3]) }), 'stream');
    const [schema, batch] = [...encapsulatedMessages(ipc)];
    const a = new FlightClient(location('node-a'));
    const garbage = { header: Buffer.from('not a flatbuffer at all'), body: batch!.body };
    const err = await a.doPut(p, [schema!, garbage]).catch((e: unknown) => e);
    a.close();
    expect(err).toBeInstanceOf(FlightCallError);
    expect(err).toMatchObject({ code: FlightStatus.INVALID_ARGUMENT });
    expect((err as Error).message).toContain(`flight "${p}"`);
    for (const n of NAMES) expect(await localPaths(n, 'bad')).toEqual([]);
  });

  it('keeps backpressure through a forwarded put: while the owner is paused, the client cannot run ahead', async () => {
    const p = Array.from({ length: 50 }, (_, i) => `bulk/big-${i}`).find((x) => ownerOf(x) === 'node-c')!;
    // 160 batches of 1 MiB, sent without waiting for acks (only for the connection's flow control).
    const ipc = tableToIPC(tableFromArrays({ v: new Float64Array(128 * 1024).fill(1.5) }), 'stream');
    const [schema, batch] = [...encapsulatedMessages(ipc)];
    const BATCHES = 160;
    let sent = 0;
    async function* messages() {
      yield schema!;
      for (let i = 0; i < BATCHES; i++) {
        sent++;
        yield batch!;
      }
    }
    const a = new FlightClient(location('node-a'));
    const done = a.doPut(p, messages());
    await until('the put to be under way', () => sent >= 8, 10_000);
    nodes['node-c'].process.kill('SIGSTOP');
    let sentWhilePaused: number;
    try {
      const before = sent;
      await new Promise((r) => setTimeout(r, 600)); // shorter than three missed probes
      sentWhilePaused = sent - before;
    } finally {
      nodes['node-c'].process.kill('SIGCONT');
    }
    const acks = await done;
    a.close();
    // Flow-control windows (16 MiB each way) and a few messages in hand, not the whole flight.
    expect(sentWhilePaused).toBeLessThan(64);
    expect(sent).toBe(BATCHES);
    expect(acks).toHaveLength(0); // no app_metadata on the batches: nothing to acknowledge
    const info = await new FlightClient(location('node-b')).getFlightInfo(p);
    expect(info.totalRecords).toBe(BATCHES * 128 * 1024);
    expect(info.endpoints[0]?.locations).toEqual([location('node-c')]);
    expect(await new FlightClient(location('node-a')).action('delete', { path: p })).toEqual([{ deleted: true }]);
  });

  it('deletes across the cluster', async () => {
    const client = new FlightClient(location('node-c'));
    const [one] = await client.action<{ deleted: boolean }>('delete', { path: cachePuts[0]!.path });
    expect(one).toEqual({ deleted: true });
    const [many] = await client.action<{ deleted: number }>('delete-prefix', { prefix: 'cache' });
    expect(many).toEqual({ deleted: cachePuts.length - 1 });
    client.close();
    for (const n of NAMES) expect(await localPaths(n, 'cache')).toEqual([]);
  });

  it('loses no durable flight when a node is killed: the others restore its paths from S3', async () => {
    const puts: Put[] = Array.from({ length: 24 }, (_, i) => ({
      op: 'put',
      path: `durable/run-${i}`,
      kib: 64,
      seed: 1000 + i,
    }));
    const acked = await runPyClient<{ ok?: boolean }[]>('ops', location('node-c'), ['--script', JSON.stringify(puts)]);
    expect(acked.filter((a) => !a.ok)).toEqual([]);
    expect(await moto.keys('cluster', 'durable/')).toHaveLength(24);
    const onB = puts.filter((p) => ownerOf(p.path) === 'node-b');
    expect(onB.length).toBeGreaterThan(0);

    nodes['node-b'].process.kill('SIGKILL');
    const killedAt = Date.now();
    const live: Name[] = ['node-a', 'node-c'];
    const readAll = async (through: Name) => {
      const checks = await runPyClient<{ ok: boolean; problems: string[] }[]>('ops', location(through), [
        '--script',
        JSON.stringify(puts.map((p) => ({ ...p, op: 'check' }))),
      ]);
      expect(checks.filter((c) => !c.ok)).toEqual([]);
      expect(checks).toHaveLength(24);
    };
    // Before the others notice, a node whose call to node-b fails answers from S3 itself.
    await readAll('node-a');
    const servedMs = Date.now() - killedAt;
    await settled(live);
    const detectedMs = Date.now() - killedAt;
    // Then node-b's paths have new owners, which restore them from S3 on first read.
    for (const p of onB) {
      const info = await new FlightClient(location('node-c')).getFlightInfo(p.path);
      expect(info.endpoints[0]?.locations[0]).toBe(location(ownerOf(p.path, live)));
    }
    for (const n of live) await readAll(n);
    console.log(
      `node-b SIGKILLed: all 24 durable flights read through node-a ${servedMs} ms later; ` +
        `node-b marked down after ${detectedMs} ms; ${onB.length} of its flights restored by new owners`,
    );
    // While node-b is away: non-durable flights it would own land on the others, and one of
    // its durable flights gets a new version.
    const late: Put[] = Array.from({ length: 30 }, (_, i) => ({
      op: 'put',
      path: `cache/late-${i}`,
      kib: 16,
      seed: 700 + i,
    }));
    const lateForB = late.filter((p) => ownerOf(p.path) === 'node-b');
    expect(lateForB.length).toBeGreaterThan(0);
    const rewritten: Put = { ...onB[0]!, seed: 4242 };
    const lateAcked = await runPyClient<{ ok?: boolean }[]>('ops', location('node-a'), [
      '--script',
      JSON.stringify([...late, rewritten]),
    ]);
    expect(lateAcked.filter((a) => !a.ok)).toEqual([]);

    // node-b comes back (empty tiers): it takes its paths back and serves them from S3.
    await start('node-b');
    await settled();
    await until(
      'node-b to own its paths again',
      async () => {
        const info = await new FlightClient(location('node-a')).getFlightInfo(onB[0]!.path).catch(() => undefined);
        return info?.endpoints[0]?.locations[0] === location('node-b');
      },
      20_000,
    );
    // The others hand node-b the non-durable flights it owns and drop the durable ones it
    // owns (it restores them from S3); nobody keeps a durable flight it does not own.
    await until(
      'the flights node-b owns to be on node-b only',
      async () => {
        const lateOn = async (n: Name) => (await localPaths(n, 'cache')).filter((p) => p.startsWith('cache/late-'));
        const onNodeB = await lateOn('node-b');
        const elsewhere = [...(await lateOn('node-a')), ...(await lateOn('node-c'))];
        // Nobody keeps a durable flight it does not own.
        for (const n of NAMES) {
          if ((await localPaths(n, 'durable')).some((p) => ownerOf(p) !== n)) return false;
        }
        return (
          JSON.stringify(onNodeB) === JSON.stringify(lateForB.map((p) => p.path).sort()) &&
          elsewhere.every((p) => ownerOf(p) !== 'node-b')
        );
      },
      20_000,
    );
    // Through any node: every late flight, and the newest version of the rewritten one.
    const wanted = [...late, rewritten, ...onB.slice(1)].map((p) => ({ ...p, op: 'check' }));
    for (const n of NAMES) {
      const checks = await runPyClient<{ ok: boolean; problems: string[] }[]>('ops', location(n), [
        '--script',
        JSON.stringify(wanted),
      ]);
      expect(checks.filter((c) => !c.ok)).toEqual([]);
    }
  });

  it('a member that was paused (SIGSTOP) and missed a newer durable version serves the newer one when it is back', async () => {
    const p = Array.from({ length: 50 }, (_, i) => `durable/paused-${i}`).find((x) => ownerOf(x) === 'node-c')!;
    const v1: Put = { op: 'put', path: p, kib: 32, seed: 9001 };
    const v2: Put = { ...v1, seed: 9002 };
    await runPyClient('ops', location('node-a'), ['--script', JSON.stringify([v1])]);
    expect(await localPaths('node-c', p)).toEqual([p]);
    nodes['node-c'].process.kill('SIGSTOP');
    try {
      await settled(['node-a', 'node-b']);
      // Written while node-c is away: its new owner has it, and so does S3.
      const acked = await runPyClient<{ ok?: boolean }[]>('ops', location('node-a'), [
        '--script',
        JSON.stringify([v2]),
      ]);
      expect(acked.filter((a) => !a.ok)).toEqual([]);
    } finally {
      nodes['node-c'].process.kill('SIGCONT');
    }
    await settled();
    // node-c never saw itself go: the others tell it to resync, and it reads the store again.
    await until(
      'node-c to serve the newer version',
      async () => {
        const [check] = await runPyClient<{ ok: boolean }[]>('ops', location('node-c'), [
          '--script',
          JSON.stringify([{ ...v2, op: 'check' }]),
        ]);
        return check?.ok === true;
      },
      20_000,
    );
    for (const n of NAMES) {
      const [check] = await runPyClient<{ ok: boolean; problems: string[] }[]>('ops', location(n), [
        '--script',
        JSON.stringify([{ ...v2, op: 'check' }]),
      ]);
      expect(check).toMatchObject({ ok: true });
    }
  });
  it('stores a partitioned dataset over the members: written through any node, read whole from any, lost whole with a node unless durable', async () => {
    const count = 8;
    /** The owner of partition i of a dataset (placed by dataset and index), among the live members. */
    const partOwner = (dataset: string, i: number, live: readonly Name[] = NAMES) => ownerOf(`${dataset}#${i}`, live);
    // Two datasets with the same home, and another node holding partitions of both (killed below).
    let none = '';
    let strong = '';
    let killed: Name | undefined;
    for (let n = 0; !killed; n++) {
      none = `ds/none-${n}`;
      strong = `durable/ds-${n}`;
      const home = ownerOf(none);
      if (ownerOf(strong) !== home) continue;
      killed = NAMES.find(
        (k) =>
          k !== home &&
          [none, strong].every((d) => Array.from({ length: count }, (_, i) => partOwner(d, i)).includes(k)),
      );
    }
    const home = ownerOf(none);
    interface Read {
      error?: { error: string; message: string };
      equal?: boolean;
      by_location_equal?: boolean;
      plain_equal?: boolean;
      projection_equal?: boolean;
      locations?: string[][];
      records?: number;
      ordered?: boolean;
      listed?: string[];
    }
    const write = async (dataset: string, seed: number, indexes: number[]) => {
      const locations = NAMES.map(location);
      const out = await runPyClient<{ errors: string[] }>('cluster-dataset', location('node-a'), [
        '--path',
        dataset,
        '--script',
        JSON.stringify({ op: 'write', count, seed, indexes, locations }),
      ]);
      expect(out.errors).toEqual([]);
    };
    const read = (through: Name, dataset: string, seed: number, plain = false) =>
      runPyClient<Read>('cluster-dataset', location(through), [
        '--path',
        dataset,
        '--script',
        JSON.stringify({ op: 'read', count, seed, plain, columns: ['x', 'part'] }),
      ]);

    // 7 of 8 partitions, written through all three nodes: not visible anywhere, the missing one named.
    await write(none, 1, [0, 1, 2, 3, 4, 6, 7]);
    for (const n of NAMES)
      expect((await read(n, none, 1)).error?.message).toMatch(
        /not complete: 7 of 8 .*missing partition 5 \[retry in 1 s\]$/,
      );
    await write(none, 1, [5]);
    const expectedLocations = Array.from({ length: count }, (_, i) => [location(partOwner(none, i))]);
    for (const n of NAMES) {
      expect(await read(n, none, 1, n === home)).toMatchObject({
        equal: true,
        by_location_equal: true,
        projection_equal: true,
        ordered: true,
        records: count * 2000,
        locations: expectedLocations,
        listed: [none],
        ...(n === home ? { plain_equal: true } : {}),
      });
    }
    const { endpoints } = await new FlightClient(location(home)).getFlightInfo(none);
    // Each partition is held by its owner alone, and they are spread over more than one node.
    /** How many of a dataset's partitions (its endpoints) a node holds itself (a node-to-node read is answered locally). */
    const holds = async (n: Name, endpoints: { ticket: Buffer }[]) => {
      const client = new FlightClient(location(n));
      let found = 0;
      for (const e of endpoints) {
        const read = async () => {
          for await (const m of client.doGet(e.ticket, { [FROM_NODE_HEADER]: 'test' })) void m;
        };
        found += await read().then(
          () => 1,
          () => 0,
        );
      }
      client.close();
      return found;
    };
    const held = Object.fromEntries(
      await Promise.all(NAMES.map(async (n) => [n, await holds(n, endpoints)] as const)),
    ) as Record<Name, number>;
    for (const n of NAMES)
      expect(held[n]).toBe(Array.from({ length: count }, (_, i) => partOwner(none, i)).filter((o) => o === n).length);
    expect(NAMES.filter((n) => held[n] > 0).length).toBeGreaterThan(1);
    // tierflight admin through a node that is not the home: info names each partition's node, get reads them all.
    const via = NAMES.find((n) => n !== home)!;
    const [node, ...cli] = TIERFLIGHT_CLI as [string, ...string[]];
    const admin = (...args: string[]) =>
      execFileAsync(node, [...cli, 'admin', '--server', location(via), ...args], { cwd: ROOT, maxBuffer: 1 << 26 });
    const shown = (await admin('info', none)).stdout;
    for (let i = 0; i < count; i++)
      expect(shown).toMatch(new RegExp(`partition ${i}\\s+${location(partOwner(none, i)).replace(/[+.]/g, '\\$&')}`));
    const file = path.join(dir, 'dataset.arrows');
    await admin('get', none, '-o', file);
    const table = tableFromIPC(await readFile(file));
    expect(table.numRows).toBe(count * 2000);
    expect([...new Set(table.getChild('part')!.toArray() as Int32Array)]).toEqual(
      Array.from({ length: count }, (_, i) => i),
    );
    // arrow-go: four partitions put through one node, read back endpoint by endpoint through another.
    const { stdout } = await execFileAsync(GO_CLIENT, ['dataset', `127.0.0.1:${ports['node-b']}`], {
      timeout: 120_000,
    });
    expect(JSON.parse(stdout)).toMatchObject({ dataset: { ok: true, endpoints: 4, rows: 1200 } });
    // Deleted through any node: the dataset counts once, and its partitions go from every node.
    const go = await new FlightClient(location('node-c')).getFlightInfo('go/dataset');
    expect(await Promise.all(NAMES.map((n) => holds(n, go.endpoints)))).not.toEqual([0, 0, 0]);
    expect(await new FlightClient(location('node-c')).action('delete-prefix', { prefix: 'go' })).toEqual([
      { deleted: 1 },
    ]);
    await until('the partitions of go/dataset to go from every node', async () =>
      (await Promise.all(NAMES.map((n) => holds(n, go.endpoints)))).every((h) => h === 0),
    );

    // A class with two copies of each flight: whichever of the dataset path's owners is asked, the home answers.
    const all = Array.from({ length: count }, (_, i) => i);
    await write('hot/ds', 4, all);
    for (const n of NAMES) expect(await read(n, 'hot/ds', 4)).toMatchObject({ equal: true, by_location_equal: true });

    await write(strong, 2, all);
    expect(await read('node-a', strong, 2)).toMatchObject({ equal: true, by_location_equal: true });

    // The member holding partitions of both goes: the `none` dataset is lost everywhere, the durable one is read on.
    nodes[killed].process.kill('SIGKILL');
    const killedAt = Date.now();
    const live = NAMES.filter((n) => n !== killed);
    await until(
      `dataset ${none} to be NOT_FOUND on every live node`,
      async () => {
        for (const n of live) {
          const error = (await read(n, none, 1)).error?.message ?? '';
          if (!/NOT_FOUND|not found|lost partition/i.test(error)) return false;
        }
        return true;
      },
      20_000,
    );
    const lostMs = Date.now() - killedAt;
    for (const n of live) {
      expect((await read(n, none, 1)).error?.message).toMatch(
        new RegExp(`lost partition \\d+ of 8 \\(its node ${killed} left\\); recompute it`),
      );
    }
    await settled(live);
    for (const n of live) {
      expect(await read(n, strong, 2)).toMatchObject({
        equal: true,
        by_location_equal: true,
        locations: Array.from({ length: count }, (_, i) => [location(partOwner(strong, i, live))]),
      });
    }

    // A home restarts (a dataset's generations live in its memory): it finds its datasets
    // again from the partitions the members hold.
    await start(killed);
    await settled();
    let homeless = '';
    for (let n = 0; !homeless; n++) {
      const d = `ds/homeless-${n}`;
      if (all.every((i) => partOwner(d, i) !== ownerOf(d))) homeless = d;
    }
    const keeper = ownerOf(homeless);
    await write(homeless, 5, all);
    expect(await read(keeper, homeless, 5)).toMatchObject({ equal: true });
    nodes[keeper].process.kill('SIGKILL');
    await start(keeper);
    await settled();
    await until(
      `${keeper} to find ${homeless} again after its restart`,
      async () => (await read(keeper, homeless, 5)).equal === true,
      20_000,
    );
    for (const n of NAMES)
      expect(await read(n, homeless, 5)).toMatchObject({ equal: true, by_location_equal: true, listed: [homeless] });
    // A durable dataset whose home goes (with a partition of it): the new home finds it again
    // from what the members hold, and the partition the old home held comes back from S3.
    let homed = '';
    for (let n = 0; !homed; n++) {
      const d = `durable/homed-${n}`;
      const onHome = all.filter((i) => partOwner(d, i) === ownerOf(d)).length;
      if (onHome > 0 && onHome < count) homed = d;
    }
    const gone = ownerOf(homed);
    await write(homed, 6, all);
    expect(await read(gone, homed, 6)).toMatchObject({ equal: true });
    nodes[gone].process.kill('SIGKILL');
    const rest = NAMES.filter((n) => n !== gone);
    await settled(rest);
    await until(
      `the durable ${homed} to be read whole after its home ${gone} went`,
      async () => (await read(rest[0]!, homed, 6)).equal === true,
      20_000,
    );
    for (const n of rest) expect(await read(n, homed, 6)).toMatchObject({ equal: true, by_location_equal: true });
    console.log(
      `partitioned datasets: ${killed} SIGKILLed; the none dataset was NOT_FOUND on ${live.join(' and ')} ${lostMs} ms later; ` +
        `the strong one read whole from both (its partitions restored from S3 by their new owners)`,
    );
  });
});
