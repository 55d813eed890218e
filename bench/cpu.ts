/**
 * `npm run bench:cpu`: CPU seconds per GB on each side of DoPut and DoGet — a 512 MiB table
 * (BENCH_MIB) put 5 times (BENCH_ROUNDS), then read 5 times, by one pyarrow client, against
 * one Tierflight process and pyarrow's own Flight server in one run; the server's CPU from
 * /proc (all its threads), the client's from getrusage, and the GB/s of every call (their
 * spread is what "an unsteady DoGet" looks like). Writes bench/results/cpu.json.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import setupPython, { ROOT } from '../test/setup/python-env.js';
import { py, startReference, startTierflight } from './processes.js';

const MIB = Number(process.env.BENCH_MIB ?? 512);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);

interface Phase {
  server_cpu_s_per_gb: number;
  client_cpu_s_per_gb: number;
  gbps_each: number[];
}
type Result = Record<'put' | 'get', Phase>;

setupPython();
if (!existsSync(path.join(ROOT, 'dist/cli/main.js'))) throw new Error('run `npm run build` first');
const data = mkdtempSync(path.join(os.tmpdir(), 'tierflight-bench-cpu-'));
const children: ChildProcess[] = [];
const results: Record<string, Result> = {};
try {
  const tierflight = await startTierflight(data, 'bench.yaml');
  children.push(tierflight.child);
  results.tierflight = py<Result>('cpu', tierflight.location, tierflight.child.pid!, MIB, ROUNDS);
  tierflight.child.kill('SIGTERM');

  const reference = await startReference();
  children.push(reference.child);
  results['pyarrow server'] = py<Result>('cpu', reference.location, reference.child.pid!, MIB, ROUNDS);

  const f = (n: number) => n.toFixed(2);
  const lines = [
    '| server | call | server CPU s/GB | client CPU s/GB | GB/s of each call |',
    '| --- | --- | ---: | ---: | --- |',
    ...Object.entries(results).flatMap(([name, r]) =>
      (['put', 'get'] as const).map(
        (call) =>
          `| ${name} | ${call} | ${f(r[call].server_cpu_s_per_gb)} | ${f(r[call].client_cpu_s_per_gb)} | ${r[call].gbps_each.map(f).join(' ')} |`,
      ),
    ),
  ];
  console.log(`${MIB} MiB × ${ROUNDS}, ${os.availableParallelism()} cores\n`);
  console.log(lines.join('\n'));
  mkdirSync(path.join(ROOT, 'bench/results'), { recursive: true });
  writeFileSync(
    path.join(ROOT, 'bench/results/cpu.json'),
    JSON.stringify({ date: new Date().toISOString(), mib: MIB, rounds: ROUNDS, results }, null, 2),
  );
} finally {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  rmSync(data, { recursive: true, force: true });
}
