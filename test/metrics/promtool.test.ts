import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runPyClient } from '../helpers/python.js';
import { freePort, startTestServer, type TestServer } from '../helpers/server.js';

// `/metrics` must pass Prometheus's own linter, `promtool check metrics`. promtool comes
// from Debian's `prometheus` package: this test uses it from PATH, or installs it with
// apt-get when it runs as root (as CI does). Elsewhere it is skipped, and says so.

function findPromtool(): string | undefined {
  const which = spawnSync('sh', ['-c', 'command -v promtool'], { encoding: 'utf8' });
  if (which.status === 0) return which.stdout.trim();
  if (process.getuid?.() !== 0 || spawnSync('sh', ['-c', 'command -v apt-get']).status !== 0) return undefined;
  process.stdout.write('promtool test: installing Debian package "prometheus" for promtool\n');
  const install = spawnSync('apt-get', ['install', '-y', '--no-install-recommends', 'prometheus'], {
    encoding: 'utf8',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    timeout: 300_000,
  });
  if (install.status !== 0) {
    spawnSync('apt-get', ['update'], { timeout: 300_000 });
    spawnSync('apt-get', ['install', '-y', '--no-install-recommends', 'prometheus'], {
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      timeout: 300_000,
    });
  }
  const again = spawnSync('sh', ['-c', 'command -v promtool'], { encoding: 'utf8' });
  return again.status === 0 ? again.stdout.trim() : undefined;
}

const promtool = findPromtool();
if (!promtool) {
  process.stdout.write(
    'promtool test SKIPPED: promtool is not on PATH and cannot be installed here (install Debian package "prometheus")\n',
  );
}

describe.skipIf(!promtool)('/metrics passes promtool check metrics', () => {
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
    const out = spawnSync(promtool as string, ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect({ status: out.status, problems: `${out.stdout}${out.stderr}`.trim() }).toEqual({ status: 0, problems: '' });
  });
});
