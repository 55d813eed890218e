import { spawnSync } from 'node:child_process';
import { hashPassword, verifyPassword } from '../../src/auth/passwords.js';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../setup/python-env.js';

const cli = (...args: string[]) =>
  spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli/main.ts'), ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 60_000,
  });

const dir = mkdtempSync(path.join(tmpdir(), 'tierflight-cli-'));
const write = (name: string, text: string): string => {
  const file = path.join(dir, name);
  writeFileSync(file, text);
  return file;
};

describe('tierflight CLI', () => {
  it('validate accepts the example config, and route shows its limit nodes', () => {
    // The example reads its secrets from the environment, as a deployment would.
    process.env.TIERFLIGHT_TOKEN_SECRET = 'an-example-secret-of-at-least-32-characters';
    process.env.TIERFLIGHT_METRICS_TOKEN = 'an-example-metrics-token';
    // ...and the certificates the README's Security walk-through makes in tls/ beside config/.
    const root = mkdtempSync(path.join(tmpdir(), 'tierflight-example-'));
    mkdirSync(path.join(root, 'config'));
    mkdirSync(path.join(root, 'tls'));
    for (const f of ['server.pem', 'server.key', 'ca.pem']) writeFileSync(path.join(root, 'tls', f), 'PEM\n');
    const example = path.join(root, 'config', 'example.yaml');
    copyFileSync(path.join(ROOT, 'config/example.yaml'), example);
    expect(cli('validate', example).stdout).toMatch(/OK \(3 storage classes, 3 limit policies\)/);
    // Without them, validate names each missing file.
    rmSync(path.join(root, 'tls'), { recursive: true });
    const missing = cli('validate', example);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/server\.tls\.cert: \.\.\/tls\/server\.pem: no such file/);
    const out = cli('route', 'config/example.yaml', 'cache/db/postgres/orders').stdout;
    expect(out).toContain('per-database (segmented, scope ephemeral, onLimit evict; shared by databases)');
    expect(out).toContain('subtree "postgres": 1GiB (limit)');
  });

  it('hash-password prints an argon2id hash that verifies, and refuses a short password', async () => {
    const out = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli/main.ts'), 'hash-password'], {
      cwd: ROOT,
      encoding: 'utf8',
      input: 'correct horse battery\n',
    });
    expect(out.status).toBe(0);
    const hash = out.stdout.trim();
    expect(hash).toMatch(/^\$argon2id\$v=19\$m=\d+,t=\d+,p=\d+\$/);
    expect(await verifyPassword(hash, 'correct horse battery')).toBe(true);
    expect(await verifyPassword(hash, 'correct horse battery ')).toBe(false);
    const short = spawnSync(
      process.execPath,
      ['--import', 'tsx', path.join(ROOT, 'src/cli/main.ts'), 'hash-password'],
      {
        cwd: ROOT,
        encoding: 'utf8',
        input: 'short\n',
      },
    );
    expect(short.status).toBe(1);
    expect(short.stderr).toMatch(/at least 8 characters/);
  });

  it('runs as `npx tierflight` once built (npm start builds it): the built CLI is executable', () => {
    const build = spawnSync('npm', ['run', 'build', '--silent'], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
    expect(build.status, build.stderr).toBe(0);
    const npx = spawnSync('npx', ['--no-install', 'tierflight', '--version'], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(npx.stderr).toBe('');
    expect(npx.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  }, 180_000);

  it('validate accepts the default config', () => {
    const out = cli('validate', 'config/default.yaml');
    expect(out.stderr).toBe('');
    expect(out.status).toBe(0);
    expect(out.stdout).toMatch(/config\/default.yaml: OK \(1 storage classes, 0 limit policies\)/);
    // Every config with a durable class has a spool; validate says where.
    expect(out.stdout).toContain(`spool: ${path.join(ROOT, 'data', 'spool')} (the default for this node)\n`);
  });

  it('validate names the spool of a config with a durable class and no local folder, and a serve that cannot create it stops with a clear line', () => {
    const yaml = (spool: string) => `server: { listen: 127.0.0.1:0${spool} }
durableStores:
  - { id: s3, type: s3, bucket: b, region: us-east-1, endpoint: "http://127.0.0.1:9", forcePathStyle: true }
storageTypes:
  memory: { capacity: 1MiB }
storageClasses:
  - { name: weak, prefix: "", durability: weak, durableStore: s3, tiers: [{ storage: memory }] }
`;
    const out = cli('validate', write('no-folder.yaml', yaml('')));
    expect(out.status).toBe(0);
    expect(out.stdout).toContain(
      `spool: ${path.join(process.env.XDG_STATE_HOME!, 'tierflight', 'spool-127.0.0.1-0')} (the default for this node)\n`,
    );
    // A spool under a regular file cannot be created: the start stops before serving, saying so.
    const blocker = write('not-a-folder', '');
    const serve = cli('serve', '--config', write('bad-spool.yaml', yaml(`, spool: ${blocker}/spool`)));
    expect(serve.status).toBe(1);
    expect(serve.stdout + serve.stderr).toMatch(
      new RegExp(`cannot create the spool \\(server.spool\\) ${blocker}/spool: ENOTDIR`),
    );
  });

  it('validate warns when users are configured and /metrics is open to other hosts', async () => {
    const hash = JSON.stringify(await hashPassword('a-good-password'));
    const yaml = (metrics: string) => `server: { metrics: "${metrics}" }
storageTypes: { memory: { capacity: 1MiB } }
storageClasses: [{ name: d, prefix: "", tiers: [{ storage: memory }] }]
auth:
  tokenSecret: a-secret-of-at-least-32-characters-0123456789
  users: [{ name: u, passwordHash: ${hash}, permissions: [{ prefix: "", access: [read] }] }]
`;
    const open = cli('validate', write('open-metrics.yaml', yaml('0.0.0.0:9464')));
    expect(open.status).toBe(0);
    expect(open.stdout).toMatch(/warning: server.metrics: 0.0.0.0:9464 answers anyone who reaches it.*metricsToken/);
    const loopback = cli('validate', write('loopback-metrics.yaml', yaml('127.0.0.1:9464')));
    expect(loopback.stdout).not.toMatch(/warning/);
  });

  it('exits 2 for usage errors (unknown command or option, missing argument, a bad --server), 0 for help', () => {
    const unknown = cli('frobnicate');
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toBe("error: unknown command 'frobnicate' (see tierflight --help)\n");
    expect(cli('validate').status).toBe(2);
    expect(cli('admin', 'info').status).toBe(2);
    expect(cli('admin', 'ls', '--bogus').status).toBe(2);
    const server = cli('admin', 'ls', '--server', 'localhost:8815');
    expect(server.status).toBe(2);
    expect(server.stderr).toMatch(/--server "localhost:8815" is not a Flight location: grpc\+tcp:\/\/host:port/);
    expect(cli('--help').status).toBe(0);
    // The top-level help names every admin command.
    expect(cli('--help').stdout.replace(/\s+/g, ' ')).toMatch(/admin \[options\] .*backfill, prefetch/);
  });

  it('refuses a placeholder password hash, and says what a bad duration should be', () => {
    const out = cli(
      'validate',
      write(
        'placeholder.yaml',
        `storageTypes: { memory: { capacity: 1MiB } }
storageClasses: [{ name: d, prefix: "", tiers: [{ storage: memory, promoteAfter: { accesses: 2, within: true } }] }]
auth:
  tokenSecret: a-secret-of-at-least-32-characters-0123456789
  users: [{ name: u, passwordHash: $argon2id$v=19$m=19456,t=2,p=1$..., permissions: [{ prefix: "", access: [read] }] }]
`,
      ),
    );
    expect(out.status).toBe(1);
    expect(out.stderr).toMatch(
      /auth.users\[0\].passwordHash: expected a whole argon2id hash as `tierflight hash-password` prints it/,
    );
    expect(out.stderr).toMatch(/promoteAfter.within: expected a duration: milliseconds, or a number and a unit/);
  });

  it('validate lists every error with file:line:column and exits 1', () => {
    const file = write(
      'bad.yaml',
      'storageTypes:\n  memory: { capacity: lots }\nstorageClasses:\n  - { name: a, prefix: "", tiers: [{ storage: disk }], extra: 1 }\n',
    );
    const out = cli('validate', file);
    expect(out.status).toBe(1);
    // Schema problems come all at once; cross-references (the undefined "disk") are checked
    // once the schema holds, so they are reported on the next run.
    expect(out.stderr).toContain(`${file}: 2 configuration errors`);
    expect(out.stderr).toContain(`${file}:2:23: storageTypes.memory.capacity: "lots" is not a size`);
    expect(out.stderr).toMatch(/bad.yaml:4:\d+: storageClasses\[0\]\.extra: unknown key/);
  });

  it('route names the class, tiers and limits for a path', () => {
    const file = write(
      'route.yaml',
      `storageTypes: { memory: { capacity: 1GiB } }
storageClasses:
  - { name: root, prefix: "", tiers: [{ storage: memory }] }
  - name: reports
    prefix: cache/reports
    ttl: 7d
    tiers: [{ storage: memory, maxFlightSize: 64MiB, priority: 10 }]
limitPolicies:
  - { name: cap, type: standard, classes: [reports], limit: 512MiB }
  - name: tenants
    type: hierarchical
    classes: [reports]
    onLimit: evict
    levels:
      - { default: 5GiB, overrides: { tenant1: 10GiB } }
      - { overrides: { tenant1/dataSource1: 6GiB } }
`,
    );
    const out = cli('route', file, 'cache/reports/tenant1/q.arrow');
    expect(out.status).toBe(0);
    expect(out.stdout).toContain('class:       reports (prefix "cache/reports")');
    expect(out.stdout).toContain('0: memory, maxFlightSize 64MiB, uploadSpill reject, priority 10');
    expect(out.stdout).toContain('cap (standard, scope ephemeral, onLimit reject; shared by reports)');
    expect(out.stdout).toContain('everything under "cache/reports": 512MiB (limit)');
    expect(out.stdout).toContain('subtree "tenant1": 10GiB (override)');
    const ds1 = cli('route', file, 'cache/reports/tenant1/dataSource1/x').stdout;
    expect(ds1).toContain('subtree "tenant1/dataSource1": 6GiB (override)');
    expect(cli('route', file, 'cache/reports/tenant7/x').stdout).toContain('subtree "tenant7": 5GiB (default)');
    expect(cli('route', file, 'cache/reportsX').stdout).toContain('class:       root');
    const bad = cli('route', file, 'a/../b');
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain('path segment ".." is not allowed');
  });

  it('serve refuses a broken config with its errors', () => {
    const file = write('broken.yaml', 'storageTypes: [\n');
    const out = cli('serve', '--config', file);
    expect(out.status).toBe(1);
    expect(out.stderr).toMatch(/broken.yaml:\d+:\d+/);
  });
});
