/** The servers and the pyarrow client the benchmarks run (bench/run.ts, bench/cluster.ts). */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { SERVE_ENV, SERVE_NODE_FLAGS } from '../src/cli/node-flags.js';
import { freePort } from '../test/helpers/server.js';
import { PYTHON, ROOT } from '../test/setup/python-env.js';

const CLIENT = path.join(ROOT, 'bench/client.py');
const NODE_FLAGS = [...SERVE_NODE_FLAGS];

/** Resolves once the child has printed `count` lines matching `pattern` (stdout or stderr). */
export function waitForLine(child: ChildProcess, pattern: RegExp, count = 1): Promise<void> {
  return new Promise((resolve, reject) => {
    let out = '';
    const global = new RegExp(pattern.source, 'g');
    const onData = (d: Buffer): void => {
      out += d.toString();
      if ((out.match(global) ?? []).length >= count) resolve();
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', (code) => reject(new Error(`server exited ${code} before it was ready:\n${out}`)));
  });
}

/**
 * The pyarrow client's allocators keep the memory it frees (mimalloc, which pyarrow's
 * buffers use, and glibc's malloc, which gRPC's use), so a DoGet does not fault in and zero
 * 512 MiB of fresh pages: with their defaults, the client's page faults per DoGet
 * (30,000–110,000) set the GB/s of both servers' DoGets (1.7–2.2 GB/s with them, 3.4–4.2
 * with ~0, against either server), and one block's figures measured the client's state.
 * The servers run with their defaults.
 */
export const CLIENT_ENV = {
  MIMALLOC_PURGE_DELAY: '-1',
  MALLOC_MMAP_THRESHOLD_: String(256 << 20),
  MALLOC_TRIM_THRESHOLD_: String(4 * 2 ** 30),
};

/** Runs bench/client.py with these arguments; its JSON answer. */
export function py<T>(...args: (string | number)[]): T {
  const out = execFileSync(PYTHON, [CLIENT, ...args.map(String)], {
    encoding: 'utf8',
    maxBuffer: 1 << 20,
    env: { ...process.env, ...CLIENT_ENV },
  });
  return JSON.parse(out) as T;
}

/**
 * Starts Tierflight (the built `dist/`) on a config template from bench/ written into
 * `data`, with `serve` arguments added (`--workers 2`); waits for every worker to be ready.
 */
export async function startTierflight(
  data: string,
  template: string,
  vars: Record<string, string> = {},
  extra: { args?: string[]; workers?: number; env?: Record<string, string>; main?: string; nodeArgs?: string[] } = {},
): Promise<{ child: ChildProcess; location: string; metrics: string }> {
  const [port, metricsPort] = [await freePort(), await freePort()];
  const file = path.join(data, path.basename(template));
  let text = readFileSync(path.join(ROOT, 'bench', template), 'utf8')
    .replaceAll('$DATA', data)
    .replaceAll('$METRICS', `127.0.0.1:${metricsPort}`);
  for (const [k, v] of Object.entries(vars)) text = text.replaceAll(`$${k}`, v);
  writeFileSync(file, text);
  const child = spawn(
    process.execPath,
    [
      ...(extra.nodeArgs ?? NODE_FLAGS),
      extra.main ?? path.join(ROOT, 'dist/cli/main.js'),
      'serve',
      '--config',
      file,
      '--listen',
      `127.0.0.1:${port}`,
      ...(extra.args ?? []),
    ],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...SERVE_ENV, TIERFLIGHT_LOG_LEVEL: 'info', ...extra.env },
    },
  );
  await waitForLine(child, /"msg":"Tierflight ready"/, extra.workers ?? 1);
  return { child, location: `grpc://127.0.0.1:${port}`, metrics: `http://127.0.0.1:${metricsPort}/metrics` };
}

/**
 * Starts pyarrow's own Flight server (bench/reference_server.py), the reference every
 * ratio is taken against; over TLS with `tls` (a PEM certificate and key). Waits until it
 * serves.
 */
export async function startReference(tls?: {
  cert: string;
  key: string;
}): Promise<{ child: ChildProcess; location: string }> {
  const port = await freePort();
  const location = `${tls ? 'grpc+tls' : 'grpc'}://127.0.0.1:${port}`;
  const child = spawn(
    PYTHON,
    [path.join(ROOT, 'bench/reference_server.py'), location, ...(tls ? [tls.cert, tls.key] : [])],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  await waitForLine(child, /ready/);
  return { child, location };
}
