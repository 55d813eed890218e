import { tableFromArrays, tableToIPC } from 'apache-arrow';
import { FlightClient } from '../../src/client/flight-client.js';
import { flightPath } from '../../src/core/path.js';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashPassword } from '../../src/auth/passwords.js';
import { makeTestCerts, type TestCerts } from '../helpers/certs.js';
import { runPyClient } from '../helpers/python.js';
import { freePort, MEMORY_ONLY, startTestServer, type TestServer } from '../helpers/server.js';
import { ROOT } from '../setup/python-env.js';
import { TIERFLIGHT_CLI } from '../helpers/cli.js';

/**
 * `tierflight admin` driven as an operator would: a real process, real files written and
 * read by pyarrow, readable and JSON answers, one-line errors and exit codes, and TLS
 * with a user whose password comes from the environment.
 */
function admin(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const [node, ...cli] = TIERFLIGHT_CLI as [string, ...string[]];
    execFile(
      node,
      [...cli, 'admin', ...args],
      { cwd: ROOT, timeout: 60_000, env: { ...process.env, ...env } },
      (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('tierflight admin', () => {
  let server: TestServer;
  let dir: string;
  let files: { stream: string; file: string };
  beforeAll(async () => {
    server = await startTestServer(MEMORY_ONLY('64MiB'));
    dir = await mkdtemp(path.join(os.tmpdir(), 'tierflight-admin-'));
    files = { stream: path.join(dir, 'in.arrows'), file: path.join(dir, 'in.arrow') };
    await runPyClient('write-ipc', server.location, [
      '--path',
      'ops/t',
      '--script',
      JSON.stringify([files.stream, files.file]),
    ]);
  });
  afterAll(async () => {
    await server?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('shows a partitioned dataset once in ls, its partitions in info, and gets it whole', async () => {
    const s = ['--server', server.location];
    const client = new FlightClient(server.location);
    try {
      for (let i = 0; i < 3; i++) {
        const ipc = tableToIPC(tableFromArrays({ part: new Int32Array(1000).fill(i) }), 'stream');
        await client.putStream('sets/ds', ipc, { 'x-tierflight-partition': `${i}/3` });
      }
    } finally {
      client.close();
    }
    const ls = JSON.parse((await admin([...s, 'ls', 'sets', '--json'])).stdout) as { path: string; rows: number }[];
    expect(ls.map((f) => [f.path, f.rows])).toEqual([['sets/ds', 3000]]);
    const info = await admin([...s, 'info', 'sets/ds']);
    expect(info.stdout).toMatch(/^partitions +3 *$/m);
    expect(info.stdout).toMatch(/^partition 2 +grpc\+tcp:\/\/127\.0\.0\.1:\d+ *$/m);
    const out = path.join(dir, 'ds.arrows');
    expect((await admin([...s, 'get', 'sets/ds', '-o', out])).code).toBe(0);
    const back = await runPyClient<{ rows: number }>('ipc-rows', server.location, ['--path', out]);
    expect(back.rows).toBe(3000);
    // Gone with its partitions (the tests after this one count the flights).
    expect(await admin([...s, 'rm', 'sets/ds'])).toMatchObject({ code: 0, stdout: 'removed sets/ds\n' });
    expect(server.app.manager.list('sets')).toEqual([]);
  });

  it('puts Arrow IPC streams and files, lists, shows and gets them back equal in either format', async () => {
    const s = ['--server', server.location];
    expect(await admin([...s, 'put', files.stream, 'ops/t/stream'])).toMatchObject({
      code: 0,
      stdout: expect.stringMatching(/^ops\/t\/stream: 50000 rows, \d+ bytes\n$/),
    });
    expect((await admin([...s, 'put', files.file, 'ops/t/file'])).code).toBe(0);
    const ls = await admin([...s, 'ls', 'ops', '--json']);
    expect(JSON.parse(ls.stdout).map((f: { path: string; rows: number }) => [f.path, f.rows])).toEqual([
      ['ops/t/file', 50000],
      ['ops/t/stream', 50000],
    ]);
    expect((await admin([...s, 'ls', 'ops'])).stdout).toMatch(/^path +rows +bytes +updated\nops\/t\/file +50000 /);
    const info = JSON.parse((await admin([...s, 'info', 'ops/t/stream', '--json'])).stdout);
    expect(info).toMatchObject({
      path: 'ops/t/stream',
      rows: 50000,
      owner: null,
      endpoints: [{ locations: [server.location.replace('grpc://', 'grpc+tcp://')] }],
    });
    for (const [name, format] of [
      ['back.arrows', 'stream'],
      ['back.arrow', 'file'],
    ] as const) {
      const out = path.join(dir, name);
      expect((await admin([...s, 'get', 'ops/t/file', '-o', out, '--format', format])).code).toBe(0);
      expect(
        await runPyClient('files-equal', server.location, ['--script', JSON.stringify([files.stream, out])]),
      ).toEqual({
        equal: true,
        rows: 50000,
      });
    }
    expect((await admin([...s, 'pin', 'ops/t/file'])).stdout).toBe('pinned ops/t/file\n');
    expect(JSON.parse((await admin([...s, 'info', 'ops/t/file', '--json'])).stdout)).toMatchObject({ pinned: true });
    expect((await admin([...s, 'unpin', 'ops/t/file'])).stdout).toBe('unpinned ops/t/file\n');
    expect((await admin([...s, 'pin', 'ops/none'])).code).toBe(3);
    const stats = await admin([...s, 'stats']);
    expect(stats.stdout).toMatch(/^storage +flights +used +capacity +full\nmemory +2 /);
  });

  it('puts CSV and Parquet files written by pyarrow, and gets CSV back, equal as pyarrow reads them', async () => {
    const s = ['--server', server.location];
    const csv = path.join(dir, 'in.csv');
    const parquet = path.join(dir, 'in.parquet');
    await runPyClient('write-tabular', server.location, ['--script', JSON.stringify([csv, parquet])]);
    for (const [file, flight] of [
      [csv, 'tab/csv'],
      [parquet, 'tab/parquet'],
    ] as const) {
      expect(await admin([...s, 'put', file, flight])).toMatchObject({ code: 0 });
      expect(
        await runPyClient('flight-equals-tabular', server.location, ['--path', flight, '--script', file]),
      ).toMatchObject({
        equal: true,
        rows: 100_000,
      });
    }
    const back = path.join(dir, 'back.csv');
    expect((await admin([...s, 'get', 'tab/parquet', '--csv', '-o', back])).code).toBe(0);
    expect(await runPyClient('csv-equals', server.location, ['--script', JSON.stringify([csv, back])])).toEqual({
      equal: true,
    });
    const bad = path.join(dir, 'bad.csv');
    // Types come from the first 65,536 rows; a later value that does not fit is refused, naming its row.
    const ints = Array.from({ length: 70_000 }, (_, i) => String(i)).join('\n');
    (await import('node:fs')).writeFileSync(bad, `n\n${ints}\nthree\n`);
    const refused = await admin([...s, 'put', bad, 'tab/bad']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toBe(
      'tierflight admin put tab/bad: CSV line 70002, column "n": "three" is not int64 like the rows before it\n',
    );
    await admin([...s, 'rm', '-r', 'tab', '--yes']);
  });

  it('shows a progress bar on a terminal, and plain lines elsewhere', async () => {
    const argv = [
      process.execPath,
      '--import',
      'tsx',
      path.join(ROOT, 'src/cli/main.ts'),
      'admin',
      '--server',
      server.location,
    ];
    const tty = await runPyClient<{ output: string; status: number }>('pty-run', server.location, [
      '--script',
      JSON.stringify({ argv: [...argv, 'put', files.stream, 'ops/bar'], cwd: ROOT }),
    ]);
    expect(tty.status).toBe(0);
    expect(tty.output).toMatch(/put ops\/bar \[[█░]+\] 100% \| [\d.]+\/[\d.]+ MiB/);
    const plain = await admin(['--server', server.location, 'get', 'ops/bar', '-o', path.join(dir, 'bar.arrows')]);
    expect(plain.stderr).toMatch(/^get ops\/bar: 1\.\d MiB of 1\.\d MiB\n$/);
    expect(
      (await admin(['--server', server.location, '--json', 'get', 'ops/bar', '-o', path.join(dir, 'bar.arrows')]))
        .stderr,
    ).toBe('');
    await admin(['--server', server.location, 'rm', 'ops/bar']);
  });

  it('fails in one line naming the path and status, with exit codes a script can use', async () => {
    const s = ['--server', server.location];
    const missing = await admin([...s, 'info', 'ops/none']);
    expect(missing).toMatchObject({ code: 3, stdout: '' });
    expect(missing.stderr).toBe(
      'tierflight admin info ops/none: NOT_FOUND: flight "ops/none" not found [retrying the same call will not help]\n',
    );
    expect((await admin([...s, 'rm', 'ops/none'])).code).toBe(3);
    const unsafe = await admin([...s, 'rm', '-r', 'ops']);
    expect(unsafe.code).toBe(2);
    expect(unsafe.stderr).toMatch(/add --yes/);
    expect(JSON.parse((await admin([...s, 'rm', '-r', 'ops', '--yes', '--json'])).stdout)).toEqual({ deleted: 2 });
    const down = await admin(['--server', `grpc://127.0.0.1:${await freePort()}`, 'ls']);
    expect(down.code).toBe(5);
    expect(down.stderr).toMatch(/^tierflight admin ls: UNAVAILABLE: .*ECONNREFUSED[^\n]*\n$/);
    expect((await admin([...s, 'reserve', 'ops/r', '--owner', 'a', '--json'])).code).toBe(0);
    const held = await admin([...s, 'reserve', 'ops/r', '--owner', 'b']);
    expect(held).toMatchObject({ code: 1 });
    expect(held.stdout).toMatch(/^held by a until /);
    expect((await admin([...s, 'release', 'ops/r', '--owner', 'a'])).stdout).toBe('released ops/r\n');
  });
});

describe('tierflight admin stats', () => {
  let server: TestServer;
  let dir: string;
  const config = (d: string) => `storageTypes:
  memory: { capacity: 64MiB }
durableStores:
  - { id: local, type: filesystem, path: ${d}/durable }
storageClasses:
  - { name: kept, prefix: kept, durability: strong, durableStore: local, tiers: [{ storage: memory }] }
  - { name: default, prefix: "", tiers: [{ storage: memory }] }
`;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'tierflight-admin-stats-'));
    server = await startTestServer(config(dir), { server: `  spool: ${dir}/spool\n` });
  });
  afterAll(async () => {
    await server?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('shows durable bytes, flights only in the durable store with their bytes, and pins; human units on a terminal', async () => {
    await runPyClient('ops', server.location, [
      '--script',
      JSON.stringify([
        { op: 'put', path: 'kept/a', kib: 300, seed: 1 },
        { op: 'put', path: 'kept/b', kib: 300, seed: 2 },
      ]),
    ]);
    // After a restart the durable flights are known only in their store until read.
    await server.stop();
    server = await startTestServer(config(dir), { server: `  spool: ${dir}/spool\n` });
    await runPyClient('ops', server.location, [
      '--script',
      JSON.stringify([
        { op: 'put', path: 'mem/c', kib: 40, seed: 3 },
        { op: 'check', path: 'kept/b', kib: 300, seed: 2 },
      ]),
    ]);
    const s = ['--server', server.location];
    expect((await admin([...s, 'pin', 'mem/c'])).code).toBe(0);
    const stats = await admin([...s, 'stats']);
    const object = (p: string) => server.app.manager.lookup(flightPath([p])).durable!.object!.size;
    // Not a terminal: exact bytes, for scripts.
    const kept = stats.stdout.split('\n').find((l) => l.startsWith('kept'))!;
    expect(kept.split(/ {2,}/)).toEqual([
      'kept',
      'kept',
      '2',
      String(server.app.manager.lookup(flightPath(['kept/b'])).heldBytes),
      String(object('kept/a') + object('kept/b')),
      `1 (${object('kept/a')})`,
      '0',
    ]);
    expect(stats.stdout).toMatch(/^default +"" +1 +\d+ +0 +0 \(0\) +1$/m);
    expect(stats.stdout).toMatch(/^3 flights \(1 pinned\)/m);
    const argv = [process.execPath, '--import', 'tsx', path.join(ROOT, 'src/cli/main.ts'), 'admin', ...s];
    const tty = await runPyClient<{ output: string; status: number }>('pty-run', server.location, [
      '--script',
      JSON.stringify({ argv: [...argv, 'stats'], cwd: ROOT }),
    ]);
    expect(tty.output).toMatch(/^kept +kept +2 +[\d.]+KiB +[\d.]+KiB +1 \([\d.]+KiB\) +0\s*$/m);
    const exact = await runPyClient<{ output: string; status: number }>('pty-run', server.location, [
      '--script',
      JSON.stringify({ argv: [...argv, '--bytes', 'stats'], cwd: ROOT }),
    ]);
    expect(exact.output).toContain(`1 (${object('kept/a')})`);
    // A small transfer counts in KiB.
    const get = await admin([...s, 'get', 'mem/c', '-o', path.join(dir, 'c.arrows')]);
    expect(get.stderr).toMatch(/^get mem\/c: [\d.]+ KiB of [\d.]+ KiB\n$/);
  });
});

describe('tierflight admin over TLS as a user', () => {
  let certs: TestCerts;
  let server: TestServer;
  beforeAll(async () => {
    certs = makeTestCerts([]);
    process.env.TIERFLIGHT_TEST_TOKEN_SECRET = 'a-test-secret-that-is-long-enough-for-hs256-0123456789';
    const hash = JSON.stringify(await hashPassword('reader-password'));
    const port = await freePort();
    server = await startTestServer(
      `${MEMORY_ONLY('16MiB')}auth:
  tokenSecret: \${TIERFLIGHT_TEST_TOKEN_SECRET}
  users:
    - { name: reader, passwordHash: ${hash}, permissions: [{ prefix: shared, access: [read] }] }
`,
      {
        server: `  tls: { cert: ${certs.serverCert}, key: ${certs.serverKey} }\n`,
        port,
        advertise: `grpc+tls://127.0.0.1:${port}`,
      },
    );
  });
  afterAll(async () => {
    await server?.stop();
    if (certs) await rm(certs.dir, { recursive: true, force: true });
  });

  it('logs in with the password from the environment, and is refused what the user may not do', async () => {
    const s = ['--server', `grpc+tls://127.0.0.1:${server.port}`, '--tls-ca', certs.ca, '--user', 'reader'];
    expect(await admin([...s, 'ls'], { TIERFLIGHT_PASSWORD: 'reader-password' })).toMatchObject({ code: 0 });
    const wrong = await admin([...s, 'ls'], { TIERFLIGHT_PASSWORD: 'not-the-password' });
    expect(wrong.code).toBe(4);
    expect(wrong.stderr).toMatch(
      /^tierflight admin ls: UNAUTHENTICATED: wrong user name or password \[retrying the same call will not help\]\n$/,
    );
    const denied = await admin([...s, 'rm', 'shared/x'], { TIERFLIGHT_PASSWORD: 'reader-password' });
    expect(denied.code).toBe(4);
    expect(denied.stderr).toMatch(/PERMISSION_DENIED: user "reader" needs write access to "shared\/x"/);
    const untrusted = await admin(['--server', `grpc+tls://127.0.0.1:${server.port}`, 'ls']);
    expect(untrusted.code).toBe(5);
    expect(untrusted.stderr).toMatch(/pass --tls-ca with the CA that signed it\)\n$/);
    const plaintext = await admin(['--server', `grpc+tcp://127.0.0.1:${server.port}`, 'ls']);
    expect(plaintext.code).toBe(5);
    expect(plaintext.stderr).toMatch(/if the server serves TLS, use --server grpc\+tls:\/\/… and --tls-ca\)\n$/);
  });
});
