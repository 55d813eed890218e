import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runPyClient } from '../helpers/python.js';
import { freePort, spawnServer, type ServerProcess } from '../helpers/server.js';

/**
 * One owner per tier directory, with two real server processes: a second server naming a
 * directory the first one serves from refuses to start before touching anything, and the
 * lock goes with the first server's process, however it ends.
 */
describe('one server per tier directory', () => {
  let dir: string;
  let file: string;
  const children: ServerProcess[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'tierflight-lock-'));
    file = path.join(dir, 'config.yaml');
    await writeFile(
      file,
      `storageTypes:
  memory: { capacity: 64MiB }
  disk: { path: ${dir}/disk, capacity: 256MiB }
storageClasses:
  - { name: all, prefix: "", tiers: [{ storage: disk }] }
`,
    );
  });
  afterAll(async () => {
    for (const c of children) c.process.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });

  const ops = (location: string, script: unknown[]) =>
    runPyClient<unknown[]>('ops', location, ['--script', JSON.stringify(script)]);
  const check = { op: 'check', path: 'big/one', kib: 2048, seed: 7 };

  it('refuses a second server on the same directory, naming it and the holder, and loses nothing', async () => {
    const first = await spawnServer(file);
    children.push(first);
    await ops(first.location, [{ op: 'put', path: 'big/one', kib: 2048, seed: 7 }]);
    const files = await readdir(path.join(dir, 'disk'));
    expect(files.filter((f) => f.startsWith('flight-'))).toHaveLength(1);

    const second = spawnServer(file);
    await expect(second).rejects.toThrow(
      new RegExp(`directory ${dir}/disk is in use by another Tierflight server \\(pid ${first.process.pid} on `),
    );
    // The first server's flight is untouched and still served.
    expect(await readdir(path.join(dir, 'disk'))).toEqual(files);
    expect(await ops(first.location, [check])).toMatchObject([{ ok: true, problems: [] }]);
  });

  it('binds its ports before wiping: a server whose port is taken leaves the directory alone', async () => {
    const other = path.join(dir, 'other.yaml');
    await writeFile(
      other,
      (await import('node:fs')).readFileSync(file, 'utf8').replaceAll(`${dir}/disk`, `${dir}/other`),
    );
    await mkdir(path.join(dir, 'other'));
    await writeFile(path.join(dir, 'other', 'flight-1.arrows'), 'a flight of a server that is not running');
    const port = await freePort();
    const squatter = net.createServer().listen(port, '127.0.0.1');
    await new Promise((resolve) => squatter.once('listening', resolve));
    try {
      await expect(spawnServer(other, { port })).rejects.toThrow(/the address is in use.*"msg":"cannot start"/s);
    } finally {
      squatter.close();
    }
    expect(await readdir(path.join(dir, 'other'))).toContain('flight-1.arrows');
  });

  it('frees the directory when the holder dies, even by SIGKILL', async () => {
    const first = children.pop()!;
    first.process.kill('SIGKILL');
    await new Promise((resolve) => first.process.once('exit', resolve));
    const next = await spawnServer(file);
    children.push(next);
    // A new server starts with empty tiers: the dead server's flight is gone.
    expect(await ops(next.location, [check])).toMatchObject([{ error: 'ArrowKeyError' }]);
  });
});
