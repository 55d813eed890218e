/**
 * `npm run bench:backfill`: backfill throughput against the suite's S3 server (moto_server
 * on loopback) at concurrency 1, 4 and 16, next to a plain sequential PutObject of the same
 * object bytes. Each level starts a fresh Tierflight (in this process), puts the flights
 * to a memory-only class, reloads the class as durable, and times the backfill job.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { startNode } from '../src/node/start.js';
import { FlightClient } from '../src/client/flight-client.js';
import { loadConfigFile } from '../src/config/load.js';
import { systemClock } from '../src/core/clock.js';
import { silentLogger } from '../src/core/log.js';
import type { JobProgress } from '../src/jobs/runner.js';
import { startMoto } from '../test/helpers/moto.js';
import { runPyClient } from '../test/helpers/python.js';
import { freePort } from '../test/helpers/server.js';
import setupPython from '../test/setup/python-env.js';

const FLIGHTS = Number(process.env.BENCH_BACKFILL_FLIGHTS ?? 200);
const KIB = Number(process.env.BENCH_BACKFILL_KIB ?? 256);
const LEVELS = [1, 4, 16];

setupPython();
const moto = await startMoto();
await moto.createBucket('backfill');
const dir = mkdtempSync(path.join(os.tmpdir(), 'tierflight-bench-backfill-'));
const rows: string[] = [];
let lastKeys: string[] = [];
try {
  for (const concurrency of LEVELS) {
    const port = await freePort();
    const file = path.join(dir, `c${concurrency}.yaml`);
    const yaml = (durable: boolean) => `server:
  listen: 127.0.0.1:${port}
storageTypes:
  memory: { capacity: 2GiB }
durableStores:
  - { id: s3, type: s3, bucket: backfill, endpoint: "${moto.endpoint}", forcePathStyle: true }
storageClasses:
  - name: cache
    prefix: ""
${durable ? `    durability: weak\n    durableStore: s3\n    durablePrefix: c${concurrency}/\n` : ''}    tiers: [{ storage: memory }]
`;
    writeFileSync(file, yaml(false));
    const app = await startNode(loadConfigFile(file).config, silentLogger, systemClock, { configFile: file });
    const location = `grpc://127.0.0.1:${port}`;
    await runPyClient('ops', location, [
      '--script',
      JSON.stringify(Array.from({ length: FLIGHTS }, (_, i) => ({ op: 'put', path: `f/${i}`, kib: KIB, seed: i }))),
    ]);
    writeFileSync(file, yaml(true));
    if (!app.reload()) throw new Error('the reload to a durable class was refused');
    const client = new FlightClient(location);
    const started = performance.now();
    const progress = await client.action<JobProgress>('backfill', { class: 'cache', concurrency });
    const seconds = (performance.now() - started) / 1000;
    const last = progress.at(-1) as JobProgress;
    if (last.uploaded !== FLIGHTS) throw new Error(`uploaded ${last.uploaded} of ${FLIGHTS}`);
    rows.push(
      `backfill, concurrency ${String(concurrency).padEnd(3)} ${(FLIGHTS / seconds).toFixed(1).padStart(8)} objects/s ` +
        `${(last.bytes / 1e6 / seconds).toFixed(1).padStart(8)} MB/s`,
    );
    lastKeys = await moto.keys('backfill', `c${concurrency}/`);
    client.close();
    await app.stop();
  }
  // The baseline: the same object bytes, one PutObject after another.
  const bodies: Buffer[] = [];
  for (const key of lastKeys) {
    const got = await moto.client.send(new GetObjectCommand({ Bucket: 'backfill', Key: key }));
    bodies.push(
      Buffer.from(await (got.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray()),
    );
  }
  const started = performance.now();
  for (const [i, body] of bodies.entries()) {
    await moto.client.send(new PutObjectCommand({ Bucket: 'backfill', Key: `plain/${i}`, Body: body }));
  }
  const seconds = (performance.now() - started) / 1000;
  const bytes = bodies.reduce((a, b) => a + b.length, 0);
  rows.push(
    `plain sequential PutObject     ${(bodies.length / seconds).toFixed(1).padStart(8)} objects/s ` +
      `${(bytes / 1e6 / seconds).toFixed(1).padStart(8)} MB/s`,
  );
  process.stdout.write(
    `Backfill of ${FLIGHTS} flights of ${KIB} KiB to moto_server on loopback:\n${rows.join('\n')}\n`,
  );
} finally {
  await moto.stop();
  rmSync(dir, { recursive: true, force: true });
}
