import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runPyClient } from '../helpers/python.js';
import { freePort, startTestServer, type TestServer } from '../helpers/server.js';
import { ROOT } from '../setup/python-env.js';

/** Parses Prometheus text into `name{labels}` → value. */
function parse(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

describe('metrics, health and readiness endpoints', () => {
  let server: TestServer;
  let dir: string;
  let base: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'tierflight-metrics-'));
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    server = await startTestServer(
      `storageTypes:
  memory: { capacity: 1MiB }
  disk: { path: ${dir}, capacity: 64MiB }
storageClasses:
  - name: default
    prefix: ""
    tiers:
      - { storage: memory, maxFlightSize: 600KiB, uploadSpill: spill, evictionSpill: true }
      - { storage: disk }
`,
      { server: `  metrics: 127.0.0.1:${port}\n` },
    );
    const put = (p: string, kib: number, seed: number) => ({ op: 'put', path: p, kib, seed });
    await runPyClient('ops', server.location, [
      '--script',
      JSON.stringify([
        put('a', 200, 1),
        put('b', 200, 2),
        put('c', 200, 3),
        put('big', 2048, 4),
        { op: 'check', path: 'a', kib: 200, seed: 1 },
        { op: 'check', path: 'c', kib: 200, seed: 3 },
        { op: 'get', path: 'missing' },
      ]),
    ]);
  });
  afterAll(async () => {
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('serves /healthz and /readyz', async () => {
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    const ready = await fetch(`${base}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.text()).toBe('ready\n');
    expect((await fetch(`${base}/nope`)).status).toBe(404);
  });

  it('counts placements by storage type, class and outcome, and reports exact byte gauges', async () => {
    const res = await fetch(`${base}/metrics`);
    expect(res.headers.get('content-type')).toMatch(/text\/plain/);
    const m = parse(await res.text());
    const stats = server.app.manager.stats();
    expect(m.get('tierflight_puts_total{class="default",storage="memory"}')).toBe(3);
    expect(m.get('tierflight_puts_total{class="default",storage="disk"}')).toBe(1);
    expect(m.get('tierflight_upload_spills_total{class="default",from="memory",to="disk"}')).toBe(1);
    expect(
      m.get('tierflight_evictions_total{class="default",storage="memory",outcome="spilled"}'),
    ).toBeGreaterThanOrEqual(1);
    expect(m.get('tierflight_hits_total{class="default",storage="disk"}')).toBe(1); // a, evicted to disk
    expect(m.get('tierflight_hits_total{class="default",storage="memory"}')).toBe(1); // c
    expect(m.get('tierflight_misses_total')).toBe(1);
    expect(m.get('tierflight_storage_capacity_bytes{storage="memory"}')).toBe(1024 * 1024);
    expect(m.get('tierflight_storage_used_bytes{storage="memory"}')).toBe(stats.storageTypes.memory?.used);
    expect(m.get('tierflight_storage_used_bytes{storage="disk"}')).toBe(stats.storageTypes.disk?.used);
    expect(m.get('tierflight_class_flights{class="default",tier="1",storage="disk"}')).toBe(
      stats.classes.default?.tiers[1]?.flights,
    );
    expect(
      m.get('tierflight_storage_flights{storage="memory"}')! + m.get('tierflight_storage_flights{storage="disk"}')!,
    ).toBe(4);
    expect(m.has('process_resident_memory_bytes')).toBe(true);
    // RPC latency by method and final status.
    expect(m.get('tierflight_rpc_duration_seconds_count{method="DoPut",code="OK"}')).toBe(4);
    expect(m.get('tierflight_rpc_duration_seconds_count{method="DoGet",code="OK"}')).toBe(2);
    expect(m.get('tierflight_rpc_duration_seconds_count{method="DoGet",code="NOT_FOUND"}')).toBe(1);
    expect(m.get('tierflight_rpc_duration_seconds_count{method="GetFlightInfo",code="OK"}')).toBe(2);
  });

  it('has every metric the Grafana dashboard queries', async () => {
    const dashboard = JSON.parse(
      await readFile(path.join(ROOT, 'config/grafana/tierflight-dashboard.json'), 'utf8'),
    ) as {
      panels: { targets?: { expr: string }[] }[];
    };
    const exprs = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr));
    expect(exprs.length).toBeGreaterThan(30);
    const queried = new Set(exprs.flatMap((e) => e.match(/\b(?:tierflight|process|nodejs)_[a-z0-9_]+/g) ?? []));
    const text = await (await fetch(`${base}/metrics`)).text();
    const exposed = new Set([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => m[1] as string));
    const missing = [...queried].filter((name) => {
      const base = name.replace(/_(bucket|sum|count)$/, '');
      return !exposed.has(name) && !exposed.has(base);
    });
    expect(missing).toEqual([]);
  });
});
