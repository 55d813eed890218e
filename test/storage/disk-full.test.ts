import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runPyClient } from '../helpers/python.js';
import { flightFiles, spawnServer } from '../helpers/server.js';

// A disk tier that runs out of space fails the put cleanly. The server runs under a file
// size limit (`ulimit -f`), so its writes past 2 MiB fail the way a full disk makes them
// fail (a short write, then an error) without needing a real full filesystem.

describe('a full disk tier (server under ulimit -f)', () => {
  let child: ChildProcess;
  let dir: string;
  let location: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'tierflight-full-'));
    const config = path.join(dir, 'config.yaml');
    await writeFile(
      config,
      `storageTypes:
  disk: { path: ${dir}/disk, capacity: 1GiB }
storageClasses:
  - { name: default, prefix: "", tiers: [{ storage: disk }] }
`,
    );
    // 4096 blocks of 512 bytes: the server cannot write a file over 2 MiB.
    const server = await spawnServer(config, { fileSizeBlocks: 4096 });
    child = server.process;
    location = server.location;
  });
  afterAll(async () => {
    child?.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });

  it('fails the put with RESOURCE_EXHAUSTED, leaves nothing behind, and keeps serving', async () => {
    const out = await runPyClient<Record<string, unknown>[]>('ops', location, [
      '--script',
      JSON.stringify([
        { op: 'put', path: 'big', kib: 8192, seed: 1 },
        { op: 'list' },
        { op: 'put', path: 'small', kib: 256, seed: 2 },
        { op: 'check', path: 'small', kib: 256, seed: 2 },
        { op: 'stats' },
      ]),
    ]);
    // pyarrow raises ArrowInvalid for RESOURCE_EXHAUSTED.
    expect(out[0]).toMatchObject({
      error: 'ArrowInvalid',
      message: expect.stringMatching(/disk: cannot write flight-1\.arrows: the disk is full \(EFBIG\)/),
    });
    expect(out[1]).toEqual([]);
    expect(out[3]).toMatchObject({ ok: true });
    const stats = out[4] as {
      storageTypes: { disk: { used: number; reserved: number } };
      classes: { default: { bytes: number } };
    };
    expect(stats.storageTypes.disk.reserved).toBe(0);
    expect(stats.storageTypes.disk.used).toBe(stats.classes.default.bytes);
    expect(await flightFiles(path.join(dir, 'disk'))).toEqual(['flight-2.arrows']);
    expect(child.exitCode).toBeNull();
  });
});
