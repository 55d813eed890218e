import { flightPath } from '../src/core/path.js';
/**
 * `npm run bench:restart`: a restart with many durable flights. moto_server holds N small
 * flight objects of a `strong` class; Tierflight reaches it through a TCP proxy that adds
 * 20 ms to every request (S3's usual latency), and is started (a built process) on it:
 * start → ready, start → a random flight served, start → every manifest read (the catalog
 * known), and the requests the proxy saw until then, for N = 10,000 and N =
 * BENCH_RESTART_FLIGHTS (100,000). Writes bench/results/restart.json.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { FlightClient } from '../src/client/flight-client.js';
import { FlightObjectEncoder } from '../src/durability/flight-object.js';
import { sampleMessages } from '../test/helpers/raw-client.js';
import { startMoto, type Moto } from '../test/helpers/moto.js';
import { freePort } from '../test/helpers/server.js';
import { ROOT } from '../test/setup/python-env.js';

const BIG = Number(process.env.BENCH_RESTART_FLIGHTS ?? 100_000);
const LATENCY_MS = 20;
const BUCKET = 'restart-bench';

/** A TCP proxy that holds every chunk a client sends for LATENCY_MS (in order), counting HTTP requests. */
async function latencyProxy(target: number): Promise<{ port: number; requests: () => number; close: () => void }> {
  let requests = 0;
  const server = net.createServer((client) => {
    const upstream = net.connect(target, '127.0.0.1');
    let last = Promise.resolve();
    client.on('data', (chunk: Buffer) => {
      if (/^(GET|PUT|HEAD|POST|DELETE) /.test(chunk.subarray(0, 8).toString('latin1'))) requests++;
      last = last.then(() => new Promise((r) => setTimeout(r, LATENCY_MS))).then(() => void upstream.write(chunk));
    });
    upstream.pipe(client);
    const close = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on('close', close);
    upstream.on('close', close);
    client.on('error', close);
    upstream.on('error', close);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    requests: () => requests,
    close: () => server.close(),
  };
}

/** Writes `n` one-row flight objects straight into the bucket (not through the proxy). */
async function fill(moto: Moto, n: number, from: number): Promise<void> {
  const { schema, batches } = sampleMessages(1, 1);
  const batch = { kind: 'batch' as const, ...batches[0]!, appMetadata: Buffer.alloc(0), rows: 1 };
  let next = from;
  const worker = async (): Promise<void> => {
    while (next < n) {
      const i = next++;
      const path = flightPath(`f/${i}`);
      const encoder = new FlightObjectEncoder();
      const parts = [
        ...encoder.writeSchema(schema.header),
        ...encoder.writeMessage(batch),
        ...encoder.finish({
          path,
          createdAt: Date.now(),
          expiresAt: undefined,
          totalRecords: 1,
          totalBytes: batch.header.length + batch.body.length,
          tag: `t${i}`,
        }),
      ];
      await moto.client.send(new PutObjectCommand({ Bucket: BUCKET, Key: `tf/${path}`, Body: Buffer.concat(parts) }));
    }
  };
  await Promise.all(Array.from({ length: 32 }, worker));
}

function waitFor(child: ChildProcess, pattern: RegExp): Promise<number> {
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      if (pattern.test(out)) {
        out = '';
        resolve(performance.now());
      }
    });
    child.on('exit', (code) => reject(new Error(`server exited ${code}`)));
  });
}

interface Result {
  flights: number;
  /** `server.recoveryConcurrency` (16 when not set). */
  concurrency: number;
  ready_s: number;
  first_served_s: number;
  catalog_known_s: number;
  requests_until_ready: number;
  requests_until_known: number;
}

async function restart(moto: Moto, n: number, concurrency?: number): Promise<Result> {
  const proxy = await latencyProxy(moto.port);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tierflight-restart-bench-'));
  const port = await freePort();
  const file = path.join(dir, 'restart.yaml');
  writeFileSync(
    file,
    `server: { listen: 127.0.0.1:${port}, spool: ${dir}/spool${concurrency ? `, recoveryConcurrency: ${concurrency}` : ''} }
storageTypes:
  memory: { capacity: 4GiB }
durableStores:
  - { id: s3, type: s3, bucket: ${BUCKET}, region: us-east-1, endpoint: "http://127.0.0.1:${proxy.port}", forcePathStyle: true }
storageClasses:
  - { name: kept, prefix: "", durability: strong, durableStore: s3, durablePrefix: tf/, tiers: [{ storage: memory }] }
`,
  );
  const started = performance.now();
  const child = spawn(process.execPath, [path.join(ROOT, 'dist/cli/main.js'), 'serve', '--config', file], {
    cwd: ROOT,
    env: { ...process.env, TIERFLIGHT_LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const known = waitFor(child, /"msg":"durable manifests read"/);
  const ready = await waitFor(child, /"msg":"Tierflight ready"/);
  const requestsUntilReady = proxy.requests();
  const client = new FlightClient(`grpc://127.0.0.1:${port}`);
  const target = `f/${Math.floor(Math.random() * n)}`;
  for await (const m of client.doGet(Buffer.from(target))) void m;
  const served = performance.now();
  const knownAt = await known;
  const result = {
    flights: n,
    concurrency: concurrency ?? 16,
    ready_s: (ready - started) / 1000,
    first_served_s: (served - started) / 1000,
    catalog_known_s: (knownAt - started) / 1000,
    requests_until_ready: requestsUntilReady,
    requests_until_known: proxy.requests(),
  };
  client.close();
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  proxy.close();
  rmSync(dir, { recursive: true, force: true });
  return result;
}

const moto = await startMoto();
await moto.createBucket(BUCKET);
const results: Result[] = [];
const sweep: Result[] = [];
let have = 0;
for (const n of [10_000, BIG]) {
  await fill(moto, n, have);
  have = n;
  results.push(await restart(moto, n));
  // The background fill's concurrency, tuned here (10,000 flights).
  if (n === 10_000) for (const c of [4, 8, 32, 64, 128]) sweep.push(await restart(moto, n, c));
}
await moto.stop();
const row = (r: Result): string =>
  `${String(r.flights).padStart(7)}  ${String(r.concurrency).padStart(4)}  ${r.ready_s.toFixed(2).padStart(6)} s  ` +
  `${r.first_served_s.toFixed(2).padStart(9)} s  ${r.catalog_known_s.toFixed(1).padStart(10)} s  ` +
  `${r.requests_until_ready} / ${r.requests_until_known}`;
console.log(`restart with N durable flights, S3 requests +${LATENCY_MS} ms each`);
console.log('flights  fill   ready  first served  catalog known  requests (ready / known)');
for (const r of results) console.log(row(r));
console.log('the background fill at other concurrency (server.recoveryConcurrency):');
for (const r of sweep) console.log(row(r));
writeFileSync(path.join(ROOT, 'bench/results/restart.json'), JSON.stringify({ results, sweep }, null, 2) + '\n');
