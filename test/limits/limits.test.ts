import { flightPath } from '../../src/core/path.js';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { createManager, frame, putFlight, type TestManager } from '../helpers/manager.js';
import { runPyClient } from '../helpers/python.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

// Limit policies (DESIGN.md §4), end to end with the pyarrow client, and a randomized
// check that no limit is ever exceeded.

type Op = Record<string, unknown>;
let server: TestServer | undefined;
let t: TestManager | undefined;
afterEach(async () => {
  await server?.stop();
  server = undefined;
  await t?.cleanup();
  t = undefined;
});

const ops = <T = Record<string, unknown>[]>(s: TestServer, script: Op[]) =>
  runPyClient<T>('ops', s.location, ['--script', JSON.stringify(script)]);
const put = (p: string, seed: number, kib = 100): Op => ({ op: 'put', path: p, kib, seed });
const list = (prefix = ''): Op => ({ op: 'list', prefix });

// A 100 KiB seeded flight is about 153 KiB of Arrow IPC (values, dictionary indices, headers).
const LONGBOW = `storageTypes:
  memory: { capacity: 64MiB }
storageClasses:
  - { name: reports, prefix: cache/reports, tiers: [{ storage: memory }] }
  - { name: other, prefix: "", tiers: [{ storage: memory }] }
limitPolicies:
  - name: tenants
    type: hierarchical
    classes: [reports]
    onLimit: evict
    levels:
      - { default: 500KiB, overrides: { tenant1: 1000KiB } }
      - { overrides: { tenant1/dataSource1: 600KiB } }
`;

describe('limit policies (pyarrow client)', () => {
  it('holds the Longbow example: tenant1 1000 KiB, tenant1/dataSource1 600 KiB, other tenants 500 KiB each, evicting inside the subtree', async () => {
    server = await startTestServer(LONGBOW);
    const s = server;
    const script: Op[] = [];
    // tenant2: 5 flights into a 500 KiB default — the oldest go, tenant3 and tenant1 untouched.
    for (let i = 0; i < 3; i++) script.push(put(`cache/reports/tenant3/f${i}`, 30 + i));
    for (let i = 0; i < 5; i++) script.push(put(`cache/reports/tenant2/f${i}`, 10 + i));
    // tenant1/dataSource1: 5 flights into 600 KiB; tenant1/other: 4 more into tenant1's 1000 KiB.
    for (let i = 0; i < 5; i++) script.push(put(`cache/reports/tenant1/dataSource1/f${i}`, 20 + i));
    for (let i = 0; i < 4; i++) script.push(put(`cache/reports/tenant1/other/f${i}`, 40 + i));
    script.push(list('cache/reports/tenant2'), list('cache/reports/tenant3'), list('cache/reports/tenant1'));
    const out = await ops<unknown[]>(s, script);
    expect(out.slice(0, 17).every((o) => (o as { ok?: boolean }).ok === true)).toBe(true);
    expect(out[17]).toEqual(['cache/reports/tenant2/f2', 'cache/reports/tenant2/f3', 'cache/reports/tenant2/f4']);
    expect(out[18]).toEqual(['cache/reports/tenant3/f0', 'cache/reports/tenant3/f1', 'cache/reports/tenant3/f2']);
    // dataSource1 kept its 3 newest (600 KiB); then tenant1's 1000 KiB evicted its least
    // recently used, the oldest of those, as tenant1/other filled up: 6 flights remain.
    expect(out[19]).toEqual([
      'cache/reports/tenant1/dataSource1/f3',
      'cache/reports/tenant1/dataSource1/f4',
      'cache/reports/tenant1/other/f0',
      'cache/reports/tenant1/other/f1',
      'cache/reports/tenant1/other/f2',
      'cache/reports/tenant1/other/f3',
    ]);
    s.app.manager.limits.check();
    const nodes = [...s.app.manager.limits.tree.all()].map((n) => [n.key, n.limit, n.used <= n.limit]);
    expect(nodes).toEqual(
      expect.arrayContaining([
        ['tenant1', 1000 * 1024, true],
        ['tenant1/dataSource1', 600 * 1024, true],
      ]),
    );
    const metrics = await s.app.metrics.registry.metrics();
    expect(metrics).toMatch(/^tierflight_limit_bytes\{policy="tenants",node="tenant1\/dataSource1"\} 614400$/m);
    expect(metrics).toMatch(/^tierflight_limit_evictions_total\{policy="tenants"\} [1-9]/m);
  });

  it('holds every Longbow limit after each put of a seeded random workload', async () => {
    server = await startTestServer(LONGBOW);
    const m = server.app.manager;
    // Check the limits at every placement the server makes, not only at the end.
    const violations: string[] = [];
    m.events.subscribe((e) => {
      if (e.type !== 'put') return;
      try {
        m.limits.check();
      } catch (err) {
        violations.push((err as Error).message);
      }
    });
    let seed = 2026;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const subtrees = ['tenant1/dataSource1', 'tenant1/other', 'tenant2', 'tenant3', 'tenant4/deep/er'];
    const script: Op[] = Array.from({ length: 60 }, (_, i) =>
      put(`cache/reports/${subtrees[rand(subtrees.length)] as string}/f${i}`, i, 20 + rand(120)),
    );
    const out = await ops(server, script);
    expect(out.filter((o) => o.ok !== true)).toEqual([]); // evict never refuses a flight under its limits
    expect(violations).toEqual([]);
    m.limits.check();
    const used = new Map([...m.limits.tree.all()].map((n) => [n.key, n.used]));
    expect(used.get('tenant1')).toBeLessThanOrEqual(1000 * 1024);
    expect(used.get('tenant1/dataSource1') ?? 0).toBeLessThanOrEqual(600 * 1024);
    for (const t of ['tenant2', 'tenant3', 'tenant4']) expect(used.get(t) ?? 0).toBeLessThanOrEqual(500 * 1024);
    expect(server.app.manager.stats().storageTypes.memory?.reserved).toBe(0);
  });

  it('applies a segmented limit to a segment that did not exist at load, rejects without changing anything, and enforces two policies on one class', async () => {
    server = await startTestServer(`storageTypes:
  memory: { capacity: 64MiB }
storageClasses:
  - { name: cache, prefix: cache, tiers: [{ storage: memory }] }
limitPolicies:
  - { name: per-db, type: segmented, classes: [cache], depth: 1, limit: 350KiB, onLimit: reject }
  - { name: all, type: standard, classes: [cache], limit: 700KiB, onLimit: reject }
`);
    const s = server;
    const first = await ops(s, [put('cache/postgres/a', 1), put('cache/postgres/b', 2), put('cache/postgres/c', 3)]);
    expect(first[0]).toMatchObject({ ok: true });
    expect(first[1]).toMatchObject({ ok: true });
    // pyarrow raises ArrowInvalid for RESOURCE_EXHAUSTED; the message names the policy and subtree.
    expect(first[2]).toMatchObject({
      error: 'ArrowInvalid',
      message: expect.stringMatching(
        /flight "cache\/postgres\/c": limit policy "per-db" subtree "postgres" \(350KiB, limit\) reached/,
      ),
    });
    const before = s.app.manager.stats();
    const second = await ops(s, [
      put('cache/newdb/a', 4),
      put('cache/newdb/b', 5),
      put('cache/newdb/c', 6),
      put('cache/third/a', 7),
      list('cache'),
    ]);
    expect(second[0]).toMatchObject({ ok: true });
    expect(second[1]).toMatchObject({ ok: true });
    expect(second[2]).toMatchObject({ message: expect.stringMatching(/policy "per-db" subtree "newdb"/) });
    // A fifth flight of ~150 KiB passes its per-db limit but not the 700 KiB total.
    expect(second[3]).toMatchObject({
      message: expect.stringMatching(/policy "all" subtree "\(all\)" \(700KiB, limit\)/),
    });
    expect(second[4]).toEqual(['cache/newdb/a', 'cache/newdb/b', 'cache/postgres/a', 'cache/postgres/b']);
    expect(s.app.manager.stats().classes.cache?.flights).toBe((before.classes.cache?.flights ?? 0) + 2);
    expect(s.app.manager.stats().storageTypes.memory?.reserved).toBe(0);
    s.app.manager.limits.check();
    const metrics = await s.app.metrics.registry.metrics();
    expect(metrics).toMatch(/^tierflight_limit_rejections_total\{policy="per-db"\} 2$/m);
    expect(metrics).toMatch(/^tierflight_limit_rejections_total\{policy="all"\} 1$/m);
  });

  it('rejects a flight larger than its limit even when the policy evicts', async () => {
    server = await startTestServer(LONGBOW);
    const out = await ops(server, [
      put('cache/reports/tenant9/small', 1),
      // With the size declared up front, it is refused before anything is evicted for it.
      { ...put('cache/reports/tenant9/huge', 2, 400), hint: 620 * 1024 },
      list('cache/reports'),
      // Streamed without a hint, it is refused once it outgrows the limit (what was evicted
      // to make room for its first part stays evicted, as with any streamed upload).
      put('cache/reports/tenant9/huge', 3, 400),
      list('cache/reports'),
    ]);
    expect(out[1]).toMatchObject({
      message: expect.stringMatching(/the declared size \(620KiB\) is larger than the limit/),
    });
    expect(out[2]).toEqual(['cache/reports/tenant9/small']);
    expect(out[3]).toMatchObject({ message: expect.stringMatching(/is larger than the limit/) });
    expect(out[4]).toEqual([]);
    server.app.manager.limits.check();
  });
});

describe('limit policies under a random workload', () => {
  it('never exceed a limit after any put, overwrite or delete', async () => {
    const clock = new ManualClock(0);
    const events = new Map<string, number>();
    t = await createManager(
      `storageTypes:
  memory: { capacity: 256KiB }
storageClasses:
  - { name: a, prefix: a, tiers: [{ storage: memory }] }
  - { name: b, prefix: b, tiers: [{ storage: memory }] }
limitPolicies:
  - name: tenants
    type: hierarchical
    classes: [a, b]
    onLimit: evict
    levels:
      - { default: 40KiB, overrides: { t1: 80KiB } }
      - { overrides: { t1/x: 30KiB } }
  - { name: seg, type: segmented, classes: [a], depth: 1, limit: 50KiB, onLimit: reject }
  - { name: total, type: standard, classes: [b], limit: 100KiB, onLimit: evict }
`,
      clock,
      (e) => events.set(e.type, (events.get(e.type) ?? 0) + 1),
    );
    const m = t.manager;
    let seed = 7;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const paths = ['a/t1/x/1', 'a/t1/x/2', 'a/t1/y', 'a/t2/1', 'a/t2/2', 'b/t1/x/3', 'b/t3/1', 'b/t3/2', 'b/t4'];
    let rejected = 0;
    for (let step = 0; step < 3000; step++) {
      const path = paths[rand(paths.length)] as string;
      if (rand(5) === 0) m.delete(flightPath([path]));
      else {
        try {
          await putFlight(
            m,
            path,
            Array.from({ length: 1 + rand(3) }, () => frame(rand(1e6), 500 + rand(9000))),
          );
        } catch (err) {
          expect((err as Error).message).toMatch(/limit policy|is full/);
          rejected++;
        }
      }
      clock.advance(1 + rand(100));
      m.limits.check();
      m.checkAccounting();
    }
    // The workload hit the limits both ways.
    expect(rejected).toBeGreaterThan(0);
    expect(events.get('limit-evict') ?? 0).toBeGreaterThan(50);
    expect(m.list().length).toBeGreaterThan(2);
  });
});
