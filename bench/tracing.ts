/**
 * `npm run bench:tracing`: what OpenTelemetry tracing costs (issue 28). One Tierflight
 * process with tracing off (no OTEL_* variables), then one exporting every span over OTLP
 * (http/protobuf, to a local receiver), twice in turn; the same pyarrow workload as
 * `npm run bench`'s first block against each: a 512 MiB table (BENCH_MIB) put and read
 * (best of BENCH_ROUNDS), and BENCH_SMALL_OPS 10 KiB put+get pairs twice (the second, warm,
 * is where a per-call cost shows). With BENCH_BASELINE=<dir> (a checkout of another commit,
 * built), that build's server runs the workload too, in the same turns: the cost of the
 * tracing hooks themselves when off. Writes bench/results/tracing.json.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startOtlpReceiver } from '../test/helpers/otlp.js';
import setupPython, { ROOT } from '../test/setup/python-env.js';
import { py, startTierflight } from './processes.js';

const MIB = Number(process.env.BENCH_MIB ?? 512);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const SMALL_OPS = Number(process.env.BENCH_SMALL_OPS ?? 2000);

interface Result {
  put_gbps: number;
  get_gbps: number;
  small_ops_per_s_warm: number;
}

setupPython();
if (!existsSync(path.join(ROOT, 'dist/cli/main.js'))) throw new Error('run `npm run build` first');
const data = mkdtempSync(path.join(os.tmpdir(), 'tierflight-bench-tracing-'));
const receiver = await startOtlpReceiver();
const children: ChildProcess[] = [];
const BASELINE = process.env.BENCH_BASELINE;
type Kind = 'off' | 'on' | 'baseline';
const runs: { tracing: Kind; result: Result }[] = [];
try {
  const turn: Kind[] = BASELINE ? ['baseline', 'off', 'on'] : ['off', 'on'];
  for (const tracing of [...turn, ...turn]) {
    const env: Record<string, string> = tracing === 'on' ? { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint } : {};
    const main = tracing === 'baseline' ? path.join(path.resolve(BASELINE!), 'dist/cli/main.js') : undefined;
    const server = await startTierflight(data, 'bench.yaml', {}, { env, ...(main ? { main } : {}) });
    children.push(server.child);
    runs.push({ tracing, result: py<Result>(server.location, MIB, ROUNDS, SMALL_OPS) });
    server.child.kill('SIGTERM');
    await new Promise((r) => server.child.once('exit', r));
  }
  const f = (n: number, d = 3) => n.toFixed(d);
  const lines = [
    '| tracing | DoPut GB/s | DoGet GB/s | 10 KiB put+get pairs/s (warm) |',
    '| --- | ---: | ---: | ---: |',
    ...runs.map(
      ({ tracing, result: r }) =>
        `| ${tracing === 'baseline' ? `none (${BASELINE})` : tracing} | ${f(r.put_gbps)} | ${f(r.get_gbps)} | ${f(r.small_ops_per_s_warm, 0)} |`,
    ),
  ];
  const exports = receiver.protobuf.length;
  console.log(`${MIB} MiB best of ${ROUNDS}, ${SMALL_OPS} pairs; ${exports} OTLP exports received\n`);
  console.log(lines.join('\n'));
  mkdirSync(path.join(ROOT, 'bench/results'), { recursive: true });
  writeFileSync(
    path.join(ROOT, 'bench/results/tracing.json'),
    JSON.stringify(
      { date: new Date().toISOString(), mib: MIB, rounds: ROUNDS, smallOps: SMALL_OPS, runs, exports },
      null,
      2,
    ),
  );
} finally {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  await receiver.stop();
  rmSync(data, { recursive: true, force: true });
}
