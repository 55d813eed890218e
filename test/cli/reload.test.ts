import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, spawnServer, type ServerProcess } from '../helpers/server.js';
import { until } from '../helpers/until.js';
import { ROOT } from '../setup/python-env.js';

const cli = (...args: string[]) =>
  spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli/main.ts'), ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 60_000,
  });

/** Everything a spawned server prints from now on. */
function output(server: ServerProcess): { text: () => string } {
  let text = '';
  server.process.stdout?.on('data', (d: Buffer) => (text += d.toString()));
  return { text: () => text };
}

/**
 * `tierflight reload --config FILE` signals the server running with that config and no
 * other (two servers run side by side here), and a server that cannot start says why in
 * one line on stderr.
 */
describe('tierflight reload, and refusals to start', () => {
  let dir: string;
  const servers: ServerProcess[] = [];
  const config = (name: string, metrics = '') => `${metrics}storageTypes:
  memory: { capacity: 16MiB }
  disk: { path: ${dir}/${name}/disk, capacity: 16MiB }
storageClasses:
  - { name: d, prefix: "", tiers: [{ storage: memory }, { storage: disk }] }
`;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'tierflight-reload-'));
  });
  afterAll(async () => {
    for (const s of servers) s.process.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });

  it('sends SIGHUP to the server of the config it is given, not to another one', async () => {
    const files = { a: path.join(dir, 'a.yaml'), b: path.join(dir, 'b.yaml') };
    await writeFile(files.a, config('a'));
    await writeFile(files.b, config('b'));
    const a = await spawnServer(files.a);
    const b = await spawnServer(files.b);
    servers.push(a, b);
    const logs = { a: output(a), b: output(b) };
    const out = cli('reload', '--config', files.a);
    expect(out.stderr).toBe('');
    expect(out.status).toBe(0);
    expect(out.stdout).toBe(`sent SIGHUP to pid ${a.process.pid} (the server running ${files.a})\n`);
    await until('server a to reload', () => logs.a.text().includes('SIGHUP: reloading the config'));
    await new Promise((r) => setTimeout(r, 300));
    expect(logs.b.text()).not.toContain('SIGHUP');
    // No server holds these folders: nothing is signalled, and it says so.
    const none = path.join(dir, 'c.yaml');
    await writeFile(none, config('c'));
    const refused = cli('reload', '--config', none);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(/no running server holds .*\/c\/disk: is the server started with/);
  });

  it('says in one line why it cannot start: a folder another server holds, a port in use', async () => {
    const file = path.join(dir, 'a.yaml');
    const held = cli('serve', '--config', file, '--listen', `127.0.0.1:${await freePort()}`);
    expect(held.status).toBe(1);
    expect(held.stderr).toMatch(
      new RegExp(
        `^tierflight: cannot start with ${file}: directory .*/a/disk is in use by another Tierflight server \\(pid \\d+`,
      ),
    );
    expect(held.stderr.trim().split('\n')).toHaveLength(1);
    // The log's fatal line carries the message, not a stack.
    const fatal = held.stdout.split('\n').find((l) => l.includes('"cannot start"'));
    expect(JSON.parse(fatal!)).toMatchObject({ level: 60, err: expect.stringContaining('is in use') });

    const blocker = net.createServer().listen(0, '127.0.0.1');
    await new Promise((r) => blocker.once('listening', r));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      const free = path.join(dir, 'd.yaml');
      await writeFile(free, config('d'));
      const busy = cli('serve', '--config', free, '--listen', `127.0.0.1:${port}`);
      expect(busy.status).toBe(1);
      expect(busy.stderr.trim().split('\n')).toHaveLength(1);
      expect(busy.stderr).toContain(
        `cannot start with ${free}: cannot listen on 127.0.0.1:${port} (server.listen): the address is in use by another process`,
      );
    } finally {
      blocker.close();
    }
  });
});
