import { mkdir, mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { expect, it } from 'vitest';
import { FilesystemStore } from '../../src/durable/filesystem-store.js';
import { durableStoreConformance } from './conformance.js';

let root = '';

durableStoreConformance('filesystem', async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'tierflight-fs-store-'));
  return {
    store: new FilesystemStore('local', root),
    // A failed or aborted write must not leave its temporary file behind either.
    pendingUploads: async () =>
      (await readdir(root, { recursive: true })).filter((f) => String(f).includes('tierflight-tmp')).length,
    cleanup: () => rm(root, { recursive: true, force: true }),
  };
});

it('keeps every object under its root directory', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tierflight-fs-root-'));
  const store = new FilesystemStore('local', path.join(dir, 'store'));
  await store.put(
    'a/b/c',
    (async function* () {
      yield Buffer.from('x');
    })(),
  );
  expect(await readdir(path.join(dir, 'store', 'a', 'b'))).toEqual(['c']);
  expect(await readdir(dir)).toEqual(['store']);
  await rm(dir, { recursive: true, force: true });
});

it('removes temporary files that unfinished writes left, once they are older than given', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tierflight-fs-tmp-'));
  const store = new FilesystemStore('local', dir);
  await mkdir(path.join(dir, 'a'), { recursive: true });
  const old = path.join(dir, 'a', 'x.0123456789ab.tierflight-tmp');
  const fresh = path.join(dir, 'a', 'y.ba9876543210.tierflight-tmp');
  await writeFile(old, 'half an object');
  await writeFile(fresh, 'a write in progress');
  await writeFile(path.join(dir, 'a', 'z'), 'an object');
  const twoHoursAgo = new Date(Date.now() - 2 * 3600_000);
  await utimes(old, twoHoursAgo, twoHoursAgo);
  expect(await store.removeStaleTemporaries(3600_000)).toBe(1);
  expect((await readdir(path.join(dir, 'a'))).sort()).toEqual(['y.ba9876543210.tierflight-tmp', 'z']);
  expect(await store.removeStaleTemporaries(0)).toBe(1);
  expect(await readdir(path.join(dir, 'a'))).toEqual(['z']);
  await rm(dir, { recursive: true, force: true });
});
