import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNode, type RunningNode } from '../../src/node/start.js';
import { loadConfigFile } from '../../src/config/load.js';
import { systemClock } from '../../src/core/clock.js';
import { silentLogger } from '../../src/core/log.js';
import { runPyClient } from '../helpers/python.js';
import { freePort } from '../helpers/server.js';
import { FlightClient } from '../../src/client/flight-client.js';
import { until } from '../helpers/until.js';

// Hot reload: a changed config file is applied atomically (classes, tiers, limits; flights
// re-evaluated against the new limits), an invalid one changes nothing and is counted.

const config = (port: number, tenantLimit: string, extra = '') => `server:
  listen: 127.0.0.1:${port}
  shutdownGrace: 2s
storageTypes:
  memory: { capacity: 64MiB }
storageClasses:
  - { name: reports, prefix: reports, tiers: [{ storage: memory }] }
  - { name: other, prefix: "", tiers: [{ storage: memory }] }
limitPolicies:
  - { name: tenants, type: hierarchical, classes: [reports], onLimit: evict, levels: [{ default: ${tenantLimit} }] }
${extra}`;

describe('config reload (file change and SIGHUP)', () => {
  let dir: string;
  let file: string;
  let app: RunningNode;
  let port: number;
  let location: string;

  const list = async (prefix: string) =>
    (await runPyClient<string[][]>('ops', location, ['--script', JSON.stringify([{ op: 'list', prefix }])]))[0];
  const reloads = async (outcome: string): Promise<number> => {
    const text = await app.metrics.registry.metrics();
    const m = text.match(new RegExp(`^tierflight_config_reloads_total\\{outcome="${outcome}"\\} (\\d+)$`, 'm'));
    return m ? Number(m[1]) : 0;
  };
  /** Writes the file the way editors do: a temporary file renamed over it. */
  const replaceFile = async (text: string) => {
    await writeFile(`${file}.tmp`, text);
    await rename(`${file}.tmp`, file);
  };

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'tierflight-reload-'));
    file = path.join(dir, 'tierflight.yaml');
    port = await freePort();
    location = `grpc://127.0.0.1:${port}`;
    await writeFile(file, config(port, '1000KiB'));
    app = await startNode(loadConfigFile(file).config, silentLogger, systemClock, { configFile: file });
  });
  afterAll(async () => {
    await app?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('applies a lowered limit when the file changes, evicting down to it', async () => {
    await runPyClient('ops', location, [
      '--script',
      JSON.stringify([1, 2, 3, 4].map((i) => ({ op: 'put', path: `reports/t2/f${i}`, kib: 100, seed: i }))),
    ]);
    expect(await list('reports')).toEqual(['reports/t2/f1', 'reports/t2/f2', 'reports/t2/f3', 'reports/t2/f4']);
    await replaceFile(config(port, '350KiB'));
    await until('the reload', async () => (await reloads('applied')) === 1, 10_000);
    expect(await list('reports')).toEqual(['reports/t2/f3', 'reports/t2/f4']);
    app.manager.limits.check();
    app.manager.checkAccounting();
  });

  it('keeps the running config when the new file is invalid, and counts it', async () => {
    await replaceFile('storageTypes: [\n');
    await until('the failed reload', async () => (await reloads('invalid')) === 1, 10_000);
    // Still the 350 KiB limit: a third flight evicts the oldest.
    await runPyClient('ops', location, [
      '--script',
      JSON.stringify([{ op: 'put', path: 'reports/t2/f5', kib: 100, seed: 5 }]),
    ]);
    expect(await list('reports')).toEqual(['reports/t2/f4', 'reports/t2/f5']);
  });

  it('refuses, on SIGHUP, a change that needs a restart, and applies new classes atomically', async () => {
    await writeFile(file, config(port, '350KiB').replace('capacity: 64MiB', 'capacity: 128MiB'));
    await until('the refused reload', async () => (await reloads('refused')) >= 1, 10_000);
    expect(app.reload()).toBe(false);
    expect(app.manager.stats().storageTypes.memory?.capacity).toBe(64 * 1024 * 1024);
    // A new class for reports/t2/archive: its flights route there from now on.
    await writeFile(
      file,
      config(port, '350KiB', '').replace(
        '  - { name: other,',
        '  - { name: archive, prefix: reports/t2/archive, tiers: [{ storage: memory }] }\n  - { name: other,',
      ),
    );
    await until('the reload', async () => (await reloads('applied')) === 2, 10_000);
    expect(app.reload()).toBe(true); // SIGHUP runs this: the same file again is fine
    await runPyClient('ops', location, [
      '--script',
      JSON.stringify([1, 2, 3].map((i) => ({ op: 'put', path: `reports/t2/archive/a${i}`, kib: 100, seed: i }))),
    ]);
    expect((await list('reports/t2/archive'))?.length).toBe(3); // not under the tenants limit
    expect(app.manager.stats().classes.archive?.flights).toBe(3);
  });

  it('applies new reservation settings at once, and refuses a new reservation store until a restart', async () => {
    const withArchive = (extra: string): string =>
      config(port, '350KiB', extra).replace(
        '  - { name: other,',
        '  - { name: archive, prefix: reports/t2/archive, tiers: [{ storage: memory }] }\n  - { name: other,',
      );
    const client = new FlightClient(location);
    try {
      const applied = await reloads('applied');
      await replaceFile(withArchive('reservations:\n  maxHeartbeat: 10s\n'));
      await until('the reload', async () => (await reloads('applied')) === applied + 1, 10_000);
      const [r] = await client.action<{ expiresAt: string }>('reserve', {
        path: 'reports/x',
        owner: 'me',
        heartbeatSeconds: 3600,
      });
      expect(Date.parse(r!.expiresAt) - Date.now()).toBeLessThanOrEqual(30_000); // 10 s x 3
      const refused = await reloads('refused');
      await replaceFile(withArchive('reservations:\n  store: { type: redis, url: "redis://127.0.0.1:1/0" }\n'));
      await until('the refused reload', async () => (await reloads('refused')) === refused + 1, 10_000);
      const [again] = await client.action<{ status: string }>('reserve', {
        path: 'reports/x',
        owner: 'me',
        heartbeatSeconds: 1,
      });
      expect(again?.status).toBe('acquired'); // still the memory store, which has the reservation
    } finally {
      client.close();
    }
  });
});
