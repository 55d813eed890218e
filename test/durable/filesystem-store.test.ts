import { mkdtemp, readdir, rm } from 'node:fs/promises';
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
