/**
 * `npm run bench:validator`: what validating every incoming Arrow IPC message costs DoPut.
 *
 * 1. In process: the validator over every message of a 512 MiB stream, against copying the
 *    same bytes once (the least any server does with them); best of 5.
 * 2. End to end: DoPut GB/s from the same pyarrow client into two Tierflight servers that
 *    differ only in validation (on, and off: the header-only reader storage needs), each
 *    measured twice in alternating order; best and median of the rounds.
 *
 * Two tables: `numeric` (4 int64 + 4 float64 columns) and `strings` (a string column, a
 * dictionary column and an int64), in 64Ki-row batches. Writes bench/results/validator.json.
 */
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startNode } from '../src/node/start.js';
import { parseConfigText } from '../src/config/load.js';
import { IpcStreamValidator } from '../src/ipc/stream-validator.js';
import { silentLogger } from '../src/core/log.js';
import { ipcMessages } from '../test/helpers/raw-client.js';
import { freePort } from '../test/helpers/server.js';
import setupPython, { PYTHON, ROOT } from '../test/setup/python-env.js';

const MIB = Number(process.env.BENCH_MIB ?? 512);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const KINDS = ['numeric', 'strings'] as const;
const CLIENT = path.join(ROOT, 'bench/client.py');
const execFileAsync = promisify(execFile);

function py<T>(...args: (string | number)[]): T {
  return JSON.parse(execFileSync(PYTHON, [CLIENT, ...args.map(String)], { encoding: 'utf8' })) as T;
}

function bestOf(n: number, fn: () => void): number {
  let best = Infinity;
  for (let i = 0; i < n; i++) {
    const start = performance.now();
    fn();
    best = Math.min(best, (performance.now() - start) / 1000);
  }
  return best;
}

async function putGbps(validateIpc: boolean, kind: string): Promise<{ put_gbps: number; put_gbps_median: number }> {
  const port = await freePort();
  const config = parseConfigText(
    `server:\n  listen: 127.0.0.1:${port}\nstorageTypes:\n  memory: { capacity: 4GiB }\n` +
      `storageClasses:\n  - { name: all, prefix: "", tiers: [{ storage: memory }] }\n`,
    'validator-bench.yaml',
  );
  const app = await startNode(config, silentLogger, undefined, { validateIpc });
  try {
    // The client runs in its own process; this one only serves while it waits.
    const { stdout } = await execFileAsync(
      PYTHON,
      [CLIENT, 'puts', `grpc://127.0.0.1:${port}`, MIB, ROUNDS, kind].map(String),
    );
    return JSON.parse(stdout) as { put_gbps: number; put_gbps_median: number };
  } finally {
    await app.stop();
  }
}

async function main(): Promise<void> {
  setupPython();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tierflight-validator-bench-'));
  const results: Record<string, unknown> = {};
  try {
    console.log(`IPC validation, ${MIB} MiB tables (${ROUNDS} rounds)\n`);
    console.log(
      `${'table'.padEnd(10)}${'validate GB/s'.padStart(15)}${'copy GB/s'.padStart(12)}${'cost vs copy'.padStart(14)}`,
    );
    for (const kind of KINDS) {
      const file = path.join(dir, `${kind}.arrows`);
      py('write-ipc', file, MIB, kind);
      const messages = ipcMessages(readFileSync(file));
      const bytes = messages.reduce((n, m) => n + m.header.length + m.body.length, 0);
      const validate = bestOf(5, () => {
        const v = new IpcStreamValidator();
        messages.forEach((m, i) => v.message(i, m.header, m.body));
        v.finish(messages.length);
      });
      const target = Buffer.allocUnsafe(bytes);
      const copy = bestOf(5, () => {
        let at = 0;
        for (const m of messages) at += m.header.copy(target, at) + m.body.copy(target, at + m.header.length);
      });
      results[`${kind}_in_process`] = {
        bytes,
        messages: messages.length,
        validate_gbps: bytes / validate / 1e9,
        copy_gbps: bytes / copy / 1e9,
        validate_vs_copy: validate / copy,
      };
      console.log(
        `${kind.padEnd(10)}${(bytes / validate / 1e9).toFixed(1).padStart(15)}${(bytes / copy / 1e9).toFixed(2).padStart(12)}` +
          `${((100 * validate) / copy).toFixed(2).padStart(13)}%`,
      );
    }

    console.log(
      `\n${'DoPut GB/s'.padEnd(22)}${'validated'.padStart(11)}${'unvalidated'.padStart(13)}${'ratio'.padStart(8)}`,
    );
    for (const kind of KINDS) {
      const on: { put_gbps: number; put_gbps_median: number }[] = [];
      const off: typeof on = [];
      // Alternating order, twice, so warm-up and noise fall on both sides.
      for (const order of [
        [true, false],
        [false, true],
      ]) {
        for (const validate of order) (validate ? on : off).push(await putGbps(validate, kind));
      }
      const best = (xs: typeof on): number => Math.max(...xs.map((x) => x.put_gbps));
      const median = (xs: typeof on): number =>
        xs.map((x) => x.put_gbps_median).sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
      results[`${kind}_doput`] = { validated: on, unvalidated: off };
      for (const [name, f] of [
        ['best', best],
        ['median', median],
      ] as const) {
        console.log(
          `${`${kind} (${name})`.padEnd(22)}${f(on).toFixed(3).padStart(11)}${f(off).toFixed(3).padStart(13)}` +
            `${(f(on) / f(off)).toFixed(2).padStart(8)}`,
        );
      }
    }
    writeFileSync(path.join(ROOT, 'bench/results/validator.json'), JSON.stringify(results, null, 2) + '\n');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
