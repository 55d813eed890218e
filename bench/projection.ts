/**
 * `npm run bench:projection`: a 512 MiB table of 8 columns (BENCH_MIB) on one Tierflight
 * process, read whole by one pyarrow DoGet against a DoGet of a projection to 2 of its
 * columns (a ticket with "columns"); best of 3 (BENCH_ROUNDS), seconds and Arrow bytes each,
 * and the server's CPU seconds for each read. Writes bench/results/projection.json.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import setupPython, { ROOT } from '../test/setup/python-env.js';
import { py, startTierflight } from './processes.js';

const MIB = Number(process.env.BENCH_MIB ?? 512);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const COLUMNS = (process.env.BENCH_COLUMNS ?? 'i0,f3').split(',');

interface Result {
  full_seconds: number;
  projected_seconds: number;
  full_bytes: number;
  projected_bytes: number;
  columns: number;
  of: number;
}

setupPython();
if (!existsSync(path.join(ROOT, 'dist/cli/main.js'))) throw new Error('run `npm run build` first');
const data = mkdtempSync(path.join(os.tmpdir(), 'tierflight-bench-projection-'));
const children: ChildProcess[] = [];
try {
  const server = await startTierflight(data, 'bench.yaml');
  children.push(server.child);
  const r = py<Result>('projection', server.location, MIB, ROUNDS, COLUMNS.join(','));
  server.child.kill('SIGTERM');
  const gbps = (bytes: number, s: number) => (bytes / s / 1e9).toFixed(2);
  const lines = [
    '| read | columns | Arrow MiB | seconds (best) | GB/s of the bytes read | time vs full |',
    '| --- | ---: | ---: | ---: | ---: | ---: |',
    `| full DoGet | ${r.of} | ${(r.full_bytes / 2 ** 20).toFixed(0)} | ${r.full_seconds.toFixed(3)} | ${gbps(r.full_bytes, r.full_seconds)} | 1.00 |`,
    `| projection | ${r.columns} | ${(r.projected_bytes / 2 ** 20).toFixed(0)} | ${r.projected_seconds.toFixed(3)} | ${gbps(r.projected_bytes, r.projected_seconds)} | ${(r.projected_seconds / r.full_seconds).toFixed(2)} |`,
  ];
  console.log(`${MIB} MiB, best of ${ROUNDS}, ${os.availableParallelism()} cores\n`);
  console.log(lines.join('\n'));
  mkdirSync(path.join(ROOT, 'bench/results'), { recursive: true });
  writeFileSync(
    path.join(ROOT, 'bench/results/projection.json'),
    JSON.stringify({ date: new Date().toISOString(), mib: MIB, result: r }, null, 2),
  );
} finally {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  rmSync(data, { recursive: true, force: true });
}
