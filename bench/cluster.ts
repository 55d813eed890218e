/**
 * `npm run bench:cluster`: aggregate DoPut and DoGet GB/s with 1, 2, 4 and 8 concurrent
 * pyarrow clients (threads, one connection and one flight each, reads following endpoint
 * locations) against one Tierflight process, `serve --workers N` (BENCH_WORKERS, 2) and pyarrow's own Flight
 * server, in one run. Writes bench/results/cluster.json.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import setupPython, { ROOT } from '../test/setup/python-env.js';
import { py, startReference, startTierflight } from './processes.js';

const CLIENTS = (process.env.BENCH_CLIENTS ?? '1,2,4,8').split(',').map(Number);
const MIB = Number(process.env.BENCH_CLUSTER_MIB ?? 64);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const WORKERS = Number(process.env.BENCH_WORKERS ?? 2);

interface Row {
  clients: number;
  put_gbps: number;
  get_gbps: number;
}

setupPython();
if (!existsSync(path.join(ROOT, 'dist/cli/main.js'))) throw new Error('run `npm run build` first');
const data = mkdtempSync(path.join(os.tmpdir(), 'tierflight-bench-cluster-'));
const children: ChildProcess[] = [];
const results: Record<string, Row[]> = {};
try {
  const measure = (name: string, location: string) => {
    results[name] = CLIENTS.map((n) => py<Row>('concurrent', location, n, MIB, ROUNDS));
  };
  const one = await startTierflight(data, 'bench.yaml');
  children.push(one.child);
  measure('tierflight', one.location);
  one.child.kill('SIGTERM');

  mkdirSync(path.join(data, 'workers'));
  const two = await startTierflight(
    path.join(data, 'workers'),
    'bench.yaml',
    {},
    { args: ['--workers', String(WORKERS)], workers: WORKERS },
  );
  children.push(two.child);
  await new Promise((r) => setTimeout(r, 2_000)); // the workers probe each other up
  measure(`tierflight --workers ${WORKERS}`, two.location);
  two.child.kill('SIGTERM');

  const reference = await startReference();
  children.push(reference.child);
  measure('pyarrow server', reference.location);

  const names = Object.keys(results);
  const lines = [
    `| clients | ${names.map((n) => `${n} put | ${n} get`).join(' | ')} |`,
    `| ---: | ${names.map(() => '---: | ---:').join(' | ')} |`,
    ...CLIENTS.map(
      (n, i) =>
        `| ${n} | ${names.map((name) => `${results[name]![i]!.put_gbps.toFixed(2)} | ${results[name]![i]!.get_gbps.toFixed(2)}`).join(' | ')} |`,
    ),
  ];
  console.log(`aggregate GB/s, ${MIB} MiB per client, best of ${ROUNDS}, ${os.availableParallelism()} cores\n`);
  console.log(lines.join('\n'));
  mkdirSync(path.join(ROOT, 'bench/results'), { recursive: true });
  writeFileSync(
    path.join(ROOT, 'bench/results/cluster.json'),
    JSON.stringify({ date: new Date().toISOString(), cores: os.availableParallelism(), mib: MIB, results }, null, 2),
  );
} finally {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  rmSync(data, { recursive: true, force: true });
}
