import { flightPath } from '../../src/core/path.js';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runPyClient } from '../helpers/python.js';
import { flightFiles, startTestServer, type TestServer } from '../helpers/server.js';

interface RoundTrip {
  ok: boolean;
  problems: string[];
  batches: number;
}

/** Type cases whose tier files are opened with pyarrow.ipc as well as served back. */
const FILE_CASES = [
  'int/int64', 'float/halffloat', 'string/view', 'decimal/256', 'temporal/timestamps', 'nested/map',
  'union/dense', 'dictionary/flat', 'dictionary/in_list', 'dictionary/in_struct', 'null', 'metadata',
]; // prettier-ignore

describe.each([
  { storage: 'disk_mapped', layout: 'file', ext: '.arrow' },
  { storage: 'disk', layout: 'stream', ext: '.arrows' },
] as const)('the $storage storage type (pyarrow client)', ({ storage, layout, ext }) => {
  let server: TestServer;
  let dir: string;
  let types: Record<string, RoundTrip>;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), `tierflight-${storage}-`));
    server = await startTestServer(`storageTypes:
  ${storage}: { path: ${dir}, capacity: 2GiB }
storageClasses:
  - { name: default, prefix: "", tiers: [{ storage: ${storage} }] }
`);
    types = await runPyClient<Record<string, RoundTrip>>('types', server.location);
  });
  afterAll(async () => {
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('round-trips every type case bit-exact with app_metadata', () => {
    const failed = Object.entries(types).filter(([, r]) => !r.ok);
    expect(failed).toEqual([]);
    expect(Object.keys(types).length).toBeGreaterThan(40);
  });

  it('round-trips zero-row, schema-only, delta and replaced dictionaries, and batch ranges', async () => {
    const special = await runPyClient<Record<string, RoundTrip>>('special', server.location);
    for (const [name, result] of Object.entries(special)) {
      expect({ name, problems: result.problems }).toEqual({ name, problems: [] });
    }
    const ranges = await runPyClient<Record<string, { equal: boolean }>>('range', server.location);
    expect(Object.values(ranges).every((r) => r.equal)).toBe(true);
    const many = await runPyClient<RoundTrip>('many', server.location, ['--batches', '2000']);
    expect(many.problems).toEqual([]);
  });

  it('serves concurrent readers of different flights exactly while reusing read buffers', async () => {
    const r = await runPyClient<{ gets: number; problems: string[] }>('concurrent-reads', server.location, [
      '--path', 'concurrent', '--batches', '6',
    ]); // prettier-ignore
    expect(r).toEqual({ gets: 24, problems: [] });
  });

  it(`writes files that pyarrow.ipc opens (${layout} layout), one per flight, under its directory`, async () => {
    const files: Record<string, [string, string]> = {};
    for (const name of FILE_CASES) {
      const placed = server.app.manager.lookup(flightPath([`types/${name}`])).placed;
      const file = (placed?.placement as { file?: string } | undefined)?.file;
      expect(file && path.dirname(file)).toBe(dir);
      files[name] = [file as string, layout];
    }
    const opened = await runPyClient<Record<string, { ok: boolean }>>('ipc-files', server.location, [
      '--script',
      JSON.stringify(files),
    ]);
    expect(Object.entries(opened).filter(([, r]) => !r.ok)).toEqual([]);
    const onDisk = (await readdir(dir)).filter((f) => f.endsWith(ext));
    expect(onDisk.length).toBe(server.app.manager.list().length);
  });

  it('keeps exact accounting: used bytes are the files on disk', async () => {
    server.app.manager.checkAccounting();
    const stats = server.app.manager.stats();
    expect(stats.storageTypes[storage]?.used).toBe(stats.classes.default?.bytes);
    expect(server.app.manager.deletePrefix('')).toBeGreaterThan(40);
    await new Promise((r) => setTimeout(r, 100));
    expect(await flightFiles(dir)).toEqual([]);
    expect(server.app.manager.stats().storageTypes[storage]?.used).toBe(0);
  });
});
