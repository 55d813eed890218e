/**
 * `npm run bench`: Tierflight against pyarrow's own Flight server, side by side in one
 * run, driven by the same pyarrow client. Prints Tierflight/reference ratios and writes
 * bench/results/latest.json. Needs the test virtualenv (`npm test` creates it).
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { freePort } from '../test/helpers/server.js';
import { PYTHON, ROOT } from '../test/setup/python-env.js';
import setupPython from '../test/setup/python-env.js';

const MIB = Number(process.env.BENCH_MIB ?? 512);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const SMALL_OPS = Number(process.env.BENCH_SMALL_OPS ?? 2000);

interface Result {
  bytes: number;
  put_gbps: number;
  put_gbps_median: number;
  get_gbps: number;
  get_gbps_median: number;
  small_ops_per_s: number;
}

function waitForLine(child: ChildProcess, pattern: RegExp): Promise<void> {
  return new Promise((resolve, reject) => {
    let out = '';
    const onData = (d: Buffer): void => {
      out += d.toString();
      if (pattern.test(out)) resolve();
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', (code) => reject(new Error(`server exited ${code} before it was ready:\n${out}`)));
  });
}

function measure(location: string): Result {
  const out = execFileSync(
    PYTHON,
    [path.join(ROOT, 'bench/client.py'), location, String(MIB), String(ROUNDS), String(SMALL_OPS)],
    {
      encoding: 'utf8',
      maxBuffer: 1 << 20,
    },
  );
  return JSON.parse(out) as Result;
}

async function main(): Promise<void> {
  setupPython();
  if (!existsSync(path.join(ROOT, 'dist/cli/main.js'))) throw new Error('run `npm run build` first');
  const tfPort = await freePort();
  const refPort = await freePort();
  const tierflight = spawn(
    process.execPath,
    [
      path.join(ROOT, 'dist/cli/main.js'),
      'serve',
      '--config',
      path.join(ROOT, 'bench/bench.yaml'),
      '--listen',
      `127.0.0.1:${tfPort}`,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TIERFLIGHT_LOG_LEVEL: 'info' } },
  );
  const reference = spawn(PYTHON, [path.join(ROOT, 'bench/reference_server.py'), `grpc://127.0.0.1:${refPort}`], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  try {
    await Promise.all([waitForLine(tierflight, /Flight server listening/), waitForLine(reference, /ready/)]);
    // Alternate so neither server always runs on a warmer machine.
    const tf = measure(`grpc://127.0.0.1:${tfPort}`);
    const ref = measure(`grpc://127.0.0.1:${refPort}`);
    const rows = [
      ['DoPut GB/s (best)', tf.put_gbps, ref.put_gbps],
      ['DoPut GB/s (median)', tf.put_gbps_median, ref.put_gbps_median],
      ['DoGet GB/s (best)', tf.get_gbps, ref.get_gbps],
      ['DoGet GB/s (median)', tf.get_gbps_median, ref.get_gbps_median],
      ['10 KiB put+get ops/s', tf.small_ops_per_s, ref.small_ops_per_s],
    ] as const;
    const lines = [
      `Tierflight vs pyarrow Flight server: ${MIB} MiB table in 64Ki-row batches, best/median of ${ROUNDS}; ${SMALL_OPS} small put+get pairs`,
      `${'metric'.padEnd(24)}${'tierflight'.padStart(12)}${'pyarrow'.padStart(12)}${'ratio'.padStart(8)}`,
      ...rows.map(
        ([name, a, b]) =>
          `${name.padEnd(24)}${a.toFixed(3).padStart(12)}${b.toFixed(3).padStart(12)}${(a / b).toFixed(2).padStart(8)}`,
      ),
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
    const json = {
      date: new Date().toISOString(),
      command: 'npm run bench',
      params: { mib: MIB, rounds: ROUNDS, smallOps: SMALL_OPS },
      tierflight: tf,
      reference: ref,
      ratios: Object.fromEntries(rows.map(([name, a, b]) => [name, a / b])),
    };
    writeFileSync(path.join(ROOT, 'bench/results/latest.json'), `${JSON.stringify(json, null, 2)}\n`);
  } finally {
    tierflight.kill('SIGTERM');
    reference.kill('SIGKILL');
  }
}

await main();
