import { flightPath } from '../../src/core/path.js';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { runPyClient } from '../helpers/python.js';
import { flightFiles, startTestServer, type TestServer } from '../helpers/server.js';

// One test per tier policy of DESIGN.md §3, each seen through the pyarrow client: where
// a flight lands, what ListFlights shows, and that the bytes come back exact.

type Op = Record<string, unknown>;
interface Check {
  ok: boolean;
  problems: string[];
  endpoints: number;
  rows: number;
}

const MIN = 60_000;
let dir: string;
let server: TestServer | undefined;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tierflight-policies-'));
});
afterEach(async () => {
  await server?.stop();
  server = undefined;
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function start(yaml: string, clock = new ManualClock(1_700_000_000_000)): Promise<TestServer> {
  server = await startTestServer(yaml.replaceAll('$DIR', dir), { clock });
  return server;
}

function ops<T = unknown[]>(s: TestServer, script: Op[]): Promise<T> {
  return runPyClient<T>('ops', s.location, ['--script', JSON.stringify(script)]);
}

const put = (path: string, kib: number, seed: number, extra: Op = {}): Op => ({ op: 'put', path, kib, seed, ...extra });
const check = (path: string, kib: number, seed: number, extra: Op = {}): Op => ({
  op: 'check',
  path,
  kib,
  seed,
  ...extra,
});

/** Which storage type holds a flight now. */
function whereIs(s: TestServer, path: string): string | undefined {
  return s.app.manager.lookup(flightPath([path])).storage;
}

describe('tier policies (pyarrow client)', () => {
  it('spills an upload that outgrows its tier mid-stream, and rejects it when uploadSpill is reject', async () => {
    const s = await start(`storageTypes:
  memory: { capacity: 4MiB }
  disk: { path: $DIR/spill, capacity: 64MiB }
storageClasses:
  - name: spilling
    prefix: spill
    tiers:
      - { storage: memory, maxFlightSize: 1MiB, uploadSpill: spill }
      - { storage: disk }
  - name: strict
    prefix: strict
    tiers:
      - { storage: memory, maxFlightSize: 1MiB }
      - { storage: disk }
`);
    const out = await ops<
      [unknown, unknown, unknown, Check, Check, Check, { error: string; message: string }, string[]]
    >(s, [
      put('spill/big', 3072, 1),
      put('spill/small', 256, 2),
      put('spill/hinted', 3072, 3, { hint: 3 * 1024 * 1024 }),
      check('spill/big', 3072, 1),
      check('spill/small', 256, 2),
      check('spill/hinted', 3072, 3),
      put('strict/big', 3072, 4),
      { op: 'list' },
    ]);
    expect(out.slice(3, 6).map((c) => (c as Check).problems)).toEqual([[], [], []]);
    expect(whereIs(s, 'spill/big')).toBe('disk');
    expect(whereIs(s, 'spill/small')).toBe('memory');
    expect(whereIs(s, 'spill/hinted')).toBe('disk');
    // pyarrow raises ArrowInvalid for RESOURCE_EXHAUSTED; the message names the rule.
    expect(out[6].message).toMatch(
      /flight "strict\/big": the flight \(.*\) exceeds maxFlightSize 1MiB in tier 0 \(memory\) of class "strict", and uploadSpill is "reject"/,
    );
    expect(out[7]).toEqual(['spill/big', 'spill/hinted', 'spill/small']);
    s.app.manager.checkAccounting();
    expect(s.app.manager.stats().storageTypes.memory?.reserved).toBe(0);
  });

  it('evicts the lowest priority first, least recently used within a priority, across classes', async () => {
    const s = await start(`storageTypes:
  memory: { capacity: 1300KiB }
storageClasses:
  - { name: lo, prefix: lo, tiers: [{ storage: memory, priority: 0 }] }
  - { name: hi, prefix: hi, tiers: [{ storage: memory, priority: 5 }] }
`);
    const one = (p: string, seed: number): Op => put(p, 200, seed);
    const first = await ops(s, [one('hi/1', 1), one('lo/1', 2), one('lo/2', 3), one('hi/2', 4), { op: 'list' }]);
    expect(first[4]).toEqual(['hi/1', 'hi/2', 'lo/1', 'lo/2']);
    const second = await ops<unknown[]>(s, [
      check('lo/1', 200, 2), // lo/1 is now more recent than lo/2
      one('hi/3', 5),
      { op: 'list' },
      one('hi/4', 6),
      { op: 'list' },
      one('hi/5', 7),
      { op: 'list' },
    ]);
    expect(second[2]).toEqual(['hi/1', 'hi/2', 'hi/3', 'lo/1']);
    expect(second[4]).toEqual(['hi/1', 'hi/2', 'hi/3', 'hi/4']);
    expect(second[6]).toEqual(['hi/2', 'hi/3', 'hi/4', 'hi/5']);
    s.app.manager.checkAccounting();
  });

  it('with evictionSpill, an evicted flight stays readable from the next tier', async () => {
    const s = await start(`storageTypes:
  memory: { capacity: 700KiB }
  disk_mapped: { path: $DIR/evict, capacity: 64MiB }
storageClasses:
  - name: default
    prefix: ""
    tiers:
      - { storage: memory, evictionSpill: true }
      - { storage: disk_mapped }
`);
    const out = await ops<unknown[]>(s, [
      put('a', 200, 1),
      put('b', 200, 2),
      put('c', 200, 3),
      { op: 'list' },
      check('a', 200, 1),
    ]);
    expect(out[3]).toEqual(['a', 'b', 'c']);
    expect((out[4] as Check).problems).toEqual([]);
    expect(whereIs(s, 'a')).toBe('disk_mapped');
    expect(whereIs(s, 'c')).toBe('memory');
    s.app.manager.checkAccounting();
  });

  it('a spill or move that fails keeps the flight readable where it was, and says so', async () => {
    const clock = new ManualClock(1_700_000_000_000);
    const s = await start(
      `storageTypes:
  memory: { capacity: 500KiB }
  disk_mapped: { path: $DIR/broken, capacity: 64MiB }
storageClasses:
  - name: default
    prefix: ""
    tiers:
      - { storage: memory, evictionSpill: true, moveAfter: 10m }
      - { storage: disk_mapped }
`,
      clock,
    );
    await ops(s, [put('a', 200, 1)]);
    // The next tier's directory vanishes: every copy into it fails with an I/O error.
    await rm(path.join(dir, 'broken'), { recursive: true });
    const out = await ops<[{ error: string; message: string }, Check]>(s, [put('b', 200, 2), check('a', 200, 1)]);
    expect(out[0].error).toBe('ArrowInvalid'); // pyarrow's RESOURCE_EXHAUSTED: no room without dropping "a"
    expect(out[0].message).toMatch(/memory is full/);
    expect(out[1].problems).toEqual([]);
    expect(whereIs(s, 'a')).toBe('memory');
    clock.advance(11 * MIN);
    await s.app.manager.tick(); // moveAfter: the move fails too
    expect(whereIs(s, 'a')).toBe('memory');
    const metrics = await s.app.metrics.registry.metrics();
    expect(metrics).toContain(
      'tierflight_relocation_failures_total{class="default",operation="evict",cause="error"} 1',
    );
    expect(metrics).toContain('tierflight_relocation_failures_total{class="default",operation="move",cause="error"} 1');
    // Once the directory is back, the same eviction spills.
    await mkdir(path.join(dir, 'broken'));
    const after = await ops<[{ ok: boolean }, Check]>(s, [put('b', 200, 2), check('a', 200, 1)]);
    expect(after[0].ok).toBe(true);
    expect(after[1].problems).toEqual([]);
    expect(whereIs(s, 'a')).toBe('disk_mapped');
    s.app.manager.checkAccounting();
  });

  it('moves a flight idle for moveAfter to the next tier, and promotes one read often enough back up', async () => {
    const clock = new ManualClock(1_700_000_000_000);
    const s = await start(
      `storageTypes:
  memory: { capacity: 64MiB }
  disk_mapped: { path: $DIR/move, capacity: 64MiB }
storageClasses:
  - name: default
    prefix: ""
    tiers:
      - { storage: memory, moveAfter: 10m }
      - { storage: disk_mapped, promoteAfter: { accesses: 3, within: 1m } }
`,
      clock,
    );
    await ops(s, [put('a', 300, 1)]);
    clock.advance(9 * MIN);
    await s.app.manager.tick();
    expect(whereIs(s, 'a')).toBe('memory');
    await ops(s, [check('a', 300, 1)]); // a read resets the idle time
    clock.advance(9 * MIN);
    await s.app.manager.tick();
    expect(whereIs(s, 'a')).toBe('memory');
    clock.advance(2 * MIN);
    await s.app.manager.tick();
    expect(whereIs(s, 'a')).toBe('disk_mapped');

    // Three reads spread over more than the window do not promote it...
    for (let i = 0; i < 3; i++) {
      expect(((await ops<Check[]>(s, [check('a', 300, 1)]))[0] as Check).problems).toEqual([]);
      clock.advance(40_000);
      await s.app.manager.idle();
    }
    expect(whereIs(s, 'a')).toBe('disk_mapped');
    // ...three within it do.
    clock.advance(5 * MIN);
    const reads = await ops<Check[]>(s, [check('a', 300, 1), check('a', 300, 1), check('a', 300, 1)]);
    expect(reads.map((r) => r.problems)).toEqual([[], [], []]);
    await s.app.manager.idle();
    expect(whereIs(s, 'a')).toBe('memory');
    expect(((await ops<Check[]>(s, [check('a', 300, 1)]))[0] as Check).problems).toEqual([]);
    s.app.manager.checkAccounting();
    // The disk_mapped copy stays, clean: idle again, the flight moves back down onto it.
    const mapped = s.app.manager.stats().storageTypes.disk_mapped;
    expect(mapped).toMatchObject({ flights: 0 });
    expect(mapped?.used).toBe(mapped?.clean);
    expect(mapped?.clean).toBeGreaterThan(0);
    clock.advance(11 * MIN);
    await s.app.manager.tick();
    await s.app.manager.idle();
    expect(whereIs(s, 'a')).toBe('disk_mapped');
    expect(s.app.manager.stats().storageTypes.disk_mapped).toMatchObject({ flights: 1, clean: 0, used: mapped?.used });
    expect(s.app.manager.stats().storageTypes.memory?.used).toBe(0);
    expect(((await ops<Check[]>(s, [check('a', 300, 1)]))[0] as Check).problems).toEqual([]);
    s.app.manager.checkAccounting();
  });

  it('never serves an expired flight from any tier, and sweeps its file', async () => {
    const clock = new ManualClock(1_700_000_000_000);
    const s = await start(
      `storageTypes:
  disk: { path: $DIR/ttl, capacity: 64MiB }
storageClasses:
  - { name: short, prefix: short, ttl: 1m, tiers: [{ storage: disk }] }
`,
      clock,
    );
    const before = await ops<unknown[]>(s, [put('short/a', 100, 1), { op: 'info', path: 'short/a' }]);
    expect(before[1]).toMatchObject({ endpoints: 1 });
    clock.advance(MIN);
    const after = await ops<unknown[]>(s, [
      { op: 'get', path: 'short/a' },
      { op: 'info', path: 'short/a' },
      { op: 'list', prefix: 'short' },
    ]);
    // pyarrow raises ArrowKeyError for NOT_FOUND.
    expect(after[0]).toMatchObject({
      error: 'ArrowKeyError',
      message: expect.stringMatching(/flight "short\/a" not found/),
    });
    expect(after[1]).toMatchObject({
      error: 'ArrowKeyError',
      message: expect.stringMatching(/flight "short\/a" not found/),
    });
    expect(after[2]).toEqual([]);
    await s.app.manager.tick();
    await new Promise((r) => setTimeout(r, 50));
    expect(await flightFiles(path.join(dir, 'ttl'))).toEqual([]);
    expect(s.app.manager.stats().storageTypes.disk?.used).toBe(0);
  });

  it('splits a large flight into several batch-range endpoints and serves each from its tier', async () => {
    const s = await startTestServer(
      `storageTypes:
  disk_mapped: { path: ${dir}/endpoints, capacity: 64MiB }
storageClasses:
  - { name: default, prefix: "", tiers: [{ storage: disk_mapped }] }
`,
      { server: '  maxEndpointBytes: 1MiB\n' },
    );
    server = s;
    const out = await ops<unknown[]>(s, [
      put('big', 4096, 9, { batch_kib: 256 }),
      check('big', 4096, 9, { batch_kib: 256 }),
    ]);
    const got = out[1] as Check;
    expect(got.problems).toEqual([]);
    expect(got.endpoints).toBeGreaterThanOrEqual(6);
    expect(got.rows).toBe(4096 * 128);
  });
});
