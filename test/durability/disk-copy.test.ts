import { flightPath } from '../../src/core/path.js';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { runPyClient } from '../helpers/python.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { until } from '../helpers/until.js';

// config/default.yaml's shape: a flight over the memory tier's maxFlightSize spills to
// the `disk` tier (one just over it right after its put) and is written in the background
// to a local filesystem store. Its
// durable object is the tier's file copied by the kernel plus the manifest
// (test/durability/flight-object.test.ts compares the bytes); here, from outside: pyarrow
// reads the object as an Arrow stream, and a restarted server serves the flight from it.

type Op = Record<string, unknown>;
let dir: string;
let server: TestServer | undefined;

const config = () => `storageTypes:
  memory: { capacity: 64MiB }
  disk: { path: ${dir}/disk, capacity: 1GiB }
durableStores:
  - { id: local, type: filesystem, path: ${dir}/durable }
storageClasses:
  - name: default
    prefix: ""
    durability: weak
    durableStore: local
    tiers:
      - { storage: memory, maxFlightSize: 1MiB, uploadSpill: spill, evictionSpill: true }
      - { storage: disk }
`;

const ops = <T = Record<string, unknown>[]>(s: TestServer, script: Op[]) =>
  runPyClient<T>('ops', s.location, ['--script', JSON.stringify(script)]);

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tierflight-disk-copy-'));
});
afterEach(async () => {
  await server?.stop();
  server = undefined;
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

it('a spilled flight is made durable from its disk file, and a restart serves it whole', async () => {
  server = await startTestServer(config());
  const s = server;
  await ops(s, [
    { op: 'put', path: 'big/a', kib: 3000, seed: 7 },
    { op: 'put', path: 'small/b', kib: 100, seed: 8 },
    // Just over maxFlightSize (within its eighth of leeway): acknowledged from memory, then moved down.
    { op: 'put', path: 'edge/c', kib: 720, seed: 9 },
  ]);
  expect(s.app.manager.lookup(flightPath(['big/a'])).placed?.storage).toBe('disk');
  expect(s.app.manager.lookup(flightPath(['small/b'])).placed?.storage).toBe('memory');
  await until('the upload queue to drain', () => s.app.manager.stats().durability.queueDepth === 0);
  expect(s.app.manager.lookup(flightPath(['edge/c'])).placed?.storage).toBe('disk');
  expect(s.app.manager.stats().durability).toMatchObject({ uploads: 3, uploadFailures: 0 });
  expect((await readdir(path.join(dir, 'durable', 'big'))).sort()).toEqual(['a']);
  // Both spilled flights' objects share their tier file's storage: the upload of the one
  // moved after its put waited for the move, and linked the file it landed in.
  for (const key of ['big/a', 'edge/c']) expect((await stat(path.join(dir, 'durable', key))).nlink).toBe(2);
  expect((await stat(path.join(dir, 'durable', 'small', 'b'))).nlink).toBe(1);

  const objects = [path.join(dir, 'durable', 'big', 'a'), path.join(dir, 'durable', 'small', 'b')];
  const rows = await runPyClient<Record<string, number>>('ipc-objects', s.location, [
    '--script',
    JSON.stringify(objects),
  ]);
  expect(rows).toEqual({ [objects[0]!]: 3000 * 128, [objects[1]!]: 100 * 128 });
  expect(s.app.manager.stats().storageTypes.memory?.used).toBeLessThan(1024 * 1024);

  await s.stop();
  server = await startTestServer(config());
  const out = await ops(server, [
    { op: 'check', path: 'big/a', kib: 3000, seed: 7 },
    { op: 'check', path: 'small/b', kib: 100, seed: 8 },
    { op: 'check', path: 'edge/c', kib: 720, seed: 9 },
  ]);
  expect(out).toEqual([
    expect.objectContaining({ ok: true }),
    expect.objectContaining({ ok: true }),
    expect.objectContaining({ ok: true }),
  ]);
});
