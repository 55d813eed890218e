import { flightPath } from '../../src/core/path.js';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runPyClient } from '../helpers/python.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

/** A tier file deleted behind the server's back (DESIGN §7: one owner per directory). */
describe('a tier copy that vanished', () => {
  let dir: string;
  let server: TestServer;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'tierflight-vanished-'));
    server = await startTestServer(`storageTypes:
  memory: { capacity: 64MiB }
  disk: { path: ${dir}/disk, capacity: 256MiB }
durableStores:
  - { id: local, type: filesystem, path: ${dir}/durable }
storageClasses:
  - { name: kept, prefix: kept, durability: strong, durableStore: local, tiers: [{ storage: disk }] }
  - { name: lost, prefix: lost, tiers: [{ storage: disk }] }
`);
  });
  afterAll(async () => {
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const ops = (script: unknown[]) =>
    runPyClient<unknown[]>('ops', server.location, ['--script', JSON.stringify(script)]);

  it('is dropped: a durable flight is served from its durable copy, another one is gone', async () => {
    await ops([
      { op: 'put', path: 'kept/a', kib: 512, seed: 1 },
      { op: 'put', path: 'lost/b', kib: 512, seed: 2 },
    ]);
    for (const f of await readdir(path.join(dir, 'disk'))) {
      if (f.startsWith('flight-')) await rm(path.join(dir, 'disk', f));
    }
    const out = await ops([
      { op: 'check', path: 'kept/a', kib: 512, seed: 1 },
      { op: 'check', path: 'lost/b', kib: 512, seed: 2 },
    ]);
    expect(out[0]).toMatchObject({ ok: true, problems: [] });
    expect(out[1]).toMatchObject({ error: 'ArrowKeyError' });
    // The durable flight was restored into its tier again; the other one left the catalog.
    expect(server.app.manager.lookup(flightPath(['kept/a'])).storage).toBe('disk');
    expect(() => server.app.manager.lookup(flightPath(['lost/b']))).toThrow(/not found/);
    server.app.manager.checkAccounting();
  });
});
