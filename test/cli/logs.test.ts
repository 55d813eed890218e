import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import net from 'node:net';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/core/log.js';
import { TIERFLIGHT_CLI } from '../helpers/cli.js';
import { freePort } from '../helpers/server.js';
import { ROOT } from '../setup/python-env.js';

const MAIN = path.join(ROOT, 'src/cli/main.ts');
const dir = mkdtempSync(path.join(tmpdir(), 'tierflight-logs-'));
const config = path.join(dir, 'memory.yaml');
writeFileSync(
  config,
  `server: { listen: 127.0.0.1:0 }
storageTypes:
  memory: { capacity: 1MiB }
storageClasses:
  - { name: all, prefix: "", tiers: [{ storage: memory }] }
`,
);

/**
 * Runs `serve` until its ready line (or `until`) shows, then stops it with SIGTERM; what it
 * printed. With `tty`, under `script`, so its stdout is a terminal as in a shell.
 */
function serve(
  args: string[],
  {
    env = {},
    tty = false,
    until = /Tierflight ready/,
    untilPort,
  }: { env?: Record<string, string | undefined>; tty?: boolean; until?: RegExp; untilPort?: number } = {},
): Promise<string> {
  const argv = [...TIERFLIGHT_CLI, 'serve', '--config', config, ...args];
  // An undefined value removes the variable.
  const childEnv = Object.fromEntries(Object.entries({ ...process.env, ...env }).filter(([, v]) => v !== undefined));
  const quoted = argv.map((a) => `'${a}'`).join(' ');
  const child = tty
    ? spawn('script', ['-qec', quoted, '/dev/null'], { cwd: ROOT, env: childEnv })
    : spawn(argv[0] as string, argv.slice(1), { cwd: ROOT, env: childEnv });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`no ${String(until)} within 30 s:\n${out}`));
    }, 30_000);
    const stop = (): void => {
      clearTimeout(timer);
      // script passes SIGTERM on to the server it runs.
      child.kill('SIGTERM');
      child.once('exit', () => resolve(out));
    };
    const seen = (d: Buffer): void => {
      out += d.toString();
      if (untilPort === undefined && until.test(out)) stop();
    };
    child.stdout.on('data', seen);
    child.stderr.on('data', seen);
    if (untilPort !== undefined) void listening(untilPort).then(stop, reject);
  });
}

/** Resolves once something accepts connections on the port. */
async function listening(port: number): Promise<void> {
  for (let i = 0; i < 300; i++) {
    const up = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    }).catch(() => false);
    if (up) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`nothing listens on ${port}`);
}

const ESC = String.fromCharCode(27);
const jsonLines = (out: string) =>
  out
    .split(/\r?\n/)
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { level: number; msg: string });

describe('server logs (--log-format, --log-level, TIERFLIGHT_LOG_LEVEL)', () => {
  it('are JSON lines when stdout is not a terminal', async () => {
    const out = await serve([]);
    const lines = jsonLines(out);
    expect(lines.map((l) => l.msg)).toContain('Tierflight ready');
    expect(lines.find((l) => l.msg === 'Tierflight ready')).toMatchObject({ level: 30, service: 'tierflight' });
    expect(out).not.toContain(ESC);
  });

  it('are readable lines in colour on a terminal, and JSON there with --log-format json', async () => {
    const pretty = await serve([], { tty: true });
    const ready = pretty.split(/\r?\n/).find((l) => l.includes('Tierflight ready'));
    expect(ready).toBeDefined();
    // [time] INFO (pid): message {fields}, with colour codes, not a JSON object.
    const plain = ready!.replaceAll(new RegExp(`${ESC}\\[\\d+m`, 'g'), '');
    expect(plain).toMatch(/^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}\] INFO \(\d+\): Tierflight ready \{"version":/);
    expect(ready).toContain(ESC);
    const json = await serve(['--log-format', 'json'], { tty: true });
    expect(jsonLines(json).map((l) => l.msg)).toContain('Tierflight ready');
  });

  it('are readable lines without colour through a pipe with --log-format pretty', async () => {
    const out = await serve(['--log-format', 'pretty']);
    expect(out).toMatch(/^\[[\d: .-]+\] INFO: starting \{"config":/m);
    expect(out).toMatch(/INFO \(\d+\): Tierflight ready/);
    expect(out).not.toContain(ESC);
    expect(jsonLines(out)).toEqual([]);
  });

  it('a server started without its malloc setting says so, and not with it', async () => {
    const without = jsonLines(await serve([], { env: { MALLOC_MMAP_THRESHOLD_: undefined } }));
    expect(without.filter((l) => l.level === 40).map((l) => l.msg)).toEqual([
      expect.stringMatching(/^Node was started without MALLOC_MMAP_THRESHOLD_=33554432 in its environment/),
    ]);
    const withIt = jsonLines(await serve([]));
    expect(withIt.filter((l) => l.level === 40)).toEqual([]);
    expect(withIt.map((l) => l.msg)).toContain('Tierflight ready');
  });

  it('--log-level and TIERFLIGHT_LOG_LEVEL choose what is logged; the option wins', async () => {
    // At warn the server logs nothing while it starts and serves: its port answering says it is up.
    for (const [args, env] of [
      [['--log-level', 'warn'], {}],
      [[], { TIERFLIGHT_LOG_LEVEL: 'warn' }],
    ] as const) {
      const port = await freePort();
      const out = await serve([...args, '--listen', `127.0.0.1:${port}`], { env, untilPort: port });
      expect(out).toBe('');
    }
    // The option wins over the variable.
    const info = jsonLines(await serve(['--log-level', 'info'], { env: { TIERFLIGHT_LOG_LEVEL: 'warn' } }));
    expect(info.map((l) => l.msg)).toContain('Tierflight ready');
    // debug and trace lines are there when asked for (a placement decision at debug).
    const lines: string[] = [];
    const log = createLogger({ level: 'debug', destination: { write: (l: string) => lines.push(l) } as never });
    log.debug({ path: 'a' }, 'placed');
    log.trace('not at debug');
    expect(lines.map((l) => JSON.parse(l) as { level: number; msg: string })).toEqual([
      expect.objectContaining({ level: 20, msg: 'placed', path: 'a' }),
    ]);
  });

  it('refuse an unknown level or format with one line and exit 2', () => {
    const run = (args: string[], env: Record<string, string> = {}) =>
      spawnSync(process.execPath, ['--import', 'tsx', MAIN, 'serve', '--config', config, ...args], {
        cwd: ROOT,
        encoding: 'utf8',
        env: { ...process.env, ...env },
        timeout: 60_000,
      });
    const level = run(['--log-level', 'loud']);
    expect(level.status).toBe(2);
    expect(level.stderr).toBe(
      'error: --log-level must be one of fatal, error, warn, info, debug, trace, silent; got "loud"\n',
    );
    const env = run([], { TIERFLIGHT_LOG_LEVEL: 'verbose' });
    expect(env.status).toBe(2);
    expect(env.stderr).toContain('TIERFLIGHT_LOG_LEVEL must be one of');
    const format = run(['--log-format', 'xml']);
    expect(format.status).toBe(2);
    expect(format.stderr).toBe('error: --log-format must be json or pretty; got "xml"\n');
  });
});
