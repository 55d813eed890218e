/**
 * `npm run bench:datasets`: a 512 MiB table (BENCH_DATASET_MIB) as one flight on one
 * Tierflight process against the same table as a dataset of 8 partitions (BENCH_PARTS) on
 * one process and on `serve --workers 2` (BENCH_WORKERS): aggregate DoPut (one writer, or
 * one writer thread per partition) and aggregate DoGet (one pyarrow thread per endpoint,
 * each following its endpoint's location), best of 3, in one run. Writes
 * bench/results/datasets.json.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import setupPython, { ROOT } from '../test/setup/python-env.js';
import { py, startTierflight } from './processes.js';

const MIB = Number(process.env.BENCH_DATASET_MIB ?? 512);
const PARTS = Number(process.env.BENCH_PARTS ?? 8);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const WORKERS = Number(process.env.BENCH_WORKERS ?? 2);

interface Row {
  put_gbps: number;
  get_gbps: number;
  endpoints: number;
  nodes: number;
}

setupPython();
if (!existsSync(path.join(ROOT, 'dist/cli/main.js'))) throw new Error('run `npm run build` first');
const data = mkdtempSync(path.join(os.tmpdir(), 'tierflight-bench-datasets-'));
const children: ChildProcess[] = [];
const rows: { name: string; row: Row }[] = [];
try {
  const one = await startTierflight(data, 'bench.yaml');
  children.push(one.child);
  rows.push({ name: 'one flight, one process', row: py<Row>('dataset', one.location, 0, MIB, ROUNDS) });
  rows.push({ name: `${PARTS} partitions, one process`, row: py<Row>('dataset', one.location, PARTS, MIB, ROUNDS) });
  one.child.kill('SIGTERM');

  mkdirSync(path.join(data, 'workers'));
  const many = await startTierflight(
    path.join(data, 'workers'),
    'bench.yaml',
    {},
    { args: ['--workers', String(WORKERS)], workers: WORKERS },
  );
  children.push(many.child);
  await new Promise((r) => setTimeout(r, 2_000)); // the workers probe each other up
  rows.push({
    name: `${PARTS} partitions, --workers ${WORKERS}`,
    row: py<Row>('dataset', many.location, PARTS, MIB, ROUNDS),
  });
  many.child.kill('SIGTERM');

  const base = rows[0]!.row;
  const lines = [
    '| layout | endpoints | nodes | put GB/s | get GB/s | get vs one flight |',
    '| --- | ---: | ---: | ---: | ---: | ---: |',
    ...rows.map(
      ({ name, row }) =>
        `| ${name} | ${row.endpoints} | ${row.nodes} | ${row.put_gbps.toFixed(2)} | ${row.get_gbps.toFixed(2)} | ${(row.get_gbps / base.get_gbps).toFixed(2)} |`,
    ),
  ];
  console.log(`${MIB} MiB, best of ${ROUNDS}, ${os.availableParallelism()} cores\n`);
  console.log(lines.join('\n'));
  mkdirSync(path.join(ROOT, 'bench/results'), { recursive: true });
  writeFileSync(
    path.join(ROOT, 'bench/results/datasets.json'),
    JSON.stringify({ date: new Date().toISOString(), cores: os.availableParallelism(), mib: MIB, rows }, null, 2),
  );
} finally {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  rmSync(data, { recursive: true, force: true });
}
