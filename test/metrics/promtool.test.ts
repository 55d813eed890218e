import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runPyClient } from '../helpers/python.js';
import { freePort, startTestServer, type TestServer } from '../helpers/server.js';
import { METRICS_LINT } from '../setup/clients.js';

// `/metrics` must pass Prometheus's own linter: promlint from client_golang, which is what
// `promtool check metrics` runs. test/go/metricslint wraps it; the test setup builds it
// from the Go module proxy with the Go test client, so the check runs everywhere.

describe("/metrics passes promtool's linter", () => {
  let server: TestServer;
  let dir: string;
  let url: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'tierflight-promtool-'));
    const port = await freePort();
    url = `http://127.0.0.1:${port}/metrics`;
    server = await startTestServer(
      `durableStores:
  - { id: local, type: filesystem, path: ${dir}/durable }
storageTypes:
  memory: { capacity: 1MiB }
  disk_mapped: { path: ${dir}/mapped, capacity: 64MiB }
storageClasses:
  - name: default
    prefix: ""
    durability: weak
    durableStore: local
    tiers:
      - { storage: memory, maxFlightSize: 600KiB, uploadSpill: spill, evictionSpill: true }
      - { storage: disk_mapped }
`,
      { server: `  metrics: 127.0.0.1:${port}\n` },
    );
    await runPyClient('ops', server.location, [
      '--script',
      JSON.stringify([
        { op: 'put', path: 'a', kib: 200, seed: 1 },
        { op: 'put', path: 'b', kib: 2048, seed: 2 },
        { op: 'check', path: 'a', kib: 200, seed: 1 },
        { op: 'get', path: 'missing' },
      ]),
    ]);
  });
  afterAll(async () => {
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('reports no problems', async () => {
    const text = await (await fetch(url)).text();
    expect(text).toMatch(/tierflight_rpc_duration_seconds_bucket/);
    const out = spawnSync(METRICS_LINT, [], { input: text, encoding: 'utf8' });
    expect({ status: out.status, problems: `${out.stdout}${out.stderr}`.trim() }).toEqual({ status: 0, problems: '' });
  });
});
