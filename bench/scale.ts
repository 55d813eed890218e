/**
 * `npm run bench:scale`: what the number of flights costs. A Tierflight holds N one-row
 * flights in memory (filled through the storage manager; every measured call goes through
 * Flight, with the project's own client in the same process), N = 1,000 and N =
 * BENCH_SCALE_FLIGHTS (1,000,000): DoPut, GetFlightInfo and DoGet p99, a ListFlights of a
 * prefix holding 100 flights, a delete-prefix of 100 flights, and a housekeeping tick, each
 * at N against the same at 1,000 (target ≤ 1.5), and the heap and RSS bytes each flight adds.
 * Writes bench/results/scale.json.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { startNode, type RunningNode } from '../src/node/start.js';
import { FlightClient } from '../src/client/flight-client.js';
import { parseConfigText } from '../src/config/load.js';
import { silentLogger } from '../src/core/log.js';
import type { Frame } from '../src/ipc/frame.js';
import { putFlight } from '../test/helpers/manager.js';
import { freePort } from '../test/helpers/server.js';
import { sampleMessages } from '../test/helpers/raw-client.js';
import { ROOT } from '../test/setup/python-env.js';

const BIG = Number(process.env.BENCH_SCALE_FLIGHTS ?? 1_000_000);
const PER_PREFIX = 100;

/**
 * A one-row batch as a received message is held: one buffer (gRPC prefix, FlightData
 * fields), with header, body and app_metadata views into it.
 */
function receivedFrame(i: number): Frame {
  const { batches } = sampleMessages(1, 1);
  const { header, body } = batches[0]!;
  const meta = Buffer.from(`m${i}`);
  const wire = Buffer.alloc(16 + header.length + body.length + meta.length);
  let at = 10;
  const put = (part: Buffer): Buffer => {
    part.copy(wire, at);
    at += part.length;
    return wire.subarray(at - part.length, at);
  };
  return { kind: 'batch', header: put(header), body: put(body), appMetadata: put(meta), prefixed: wire, rows: 1 };
}

const pathOf = (i: number, n: number): string => `t${i % Math.max(1, n / PER_PREFIX)}/f${i}`;

function p99(times: number[]): number {
  const sorted = [...times].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))] as number;
}

async function timed(times: number[], op: () => Promise<unknown>): Promise<void> {
  const started = performance.now();
  await op();
  times.push(performance.now() - started);
}

interface Result {
  flights: number;
  put_p99_ms: number;
  info_p99_ms: number;
  get_p99_ms: number;
  list_prefix_p99_ms: number;
  delete_prefix_p99_ms: number;
  tick_p99_ms: number;
  heap_bytes_per_flight: number;
  rss_bytes_per_flight: number;
  data_bytes_per_flight: number;
  rss_beyond_data_per_flight: number;
}

async function measure(n: number): Promise<Result> {
  const port = await freePort();
  const config = parseConfigText(
    `server: { listen: 127.0.0.1:${port} }\nstorageTypes:\n  memory: { capacity: 64GiB }\n` +
      `storageClasses:\n  - { name: all, prefix: "", ttl: 7d, tiers: [{ storage: memory }] }\n`,
    'scale-bench.yaml',
  );
  const app: RunningNode = await startNode(config, silentLogger);
  const m = app.manager;
  global.gc?.();
  const before = process.memoryUsage();
  const usedBefore = m.stats().storageTypes.memory?.used ?? 0;
  for (let i = 0; i < n; i++) await putFlight(m, pathOf(i, n), [receivedFrame(i)]);
  global.gc?.();
  const after = process.memoryUsage();
  // The flights' own bytes: each message's received buffer and the schema, as the tier counts them.
  const data = (m.stats().storageTypes.memory?.used ?? 0) - usedBefore;
  const client = new FlightClient(`grpc://127.0.0.1:${port}`);
  const { schema, batches } = sampleMessages(1, 1);
  const pick = () => pathOf(Math.floor(Math.random() * n), n);
  const t = { put: [] as number[], info: [] as number[], get: [] as number[], list: [] as number[] };
  const del: number[] = [];
  const tick: number[] = [];
  const prefixes = Math.max(1, n / PER_PREFIX);
  const deletePrefix = async (i: number, times?: number[]): Promise<void> => {
    // Each delete removes a prefix of exactly 100 flights, put back (untimed) as they were before the next.
    const k = i % prefixes;
    const call = () => client.action('delete-prefix', { prefix: `t${k}` });
    await (times ? timed(times, call) : call());
    for (let j = 0; j < PER_PREFIX; j++) await putFlight(m, pathOf(k + j * prefixes, n), [receivedFrame(j)]);
  };
  // Warm every call path first, so both sizes are measured warm. Enough samples follow that
  // a p99 is not just the slowest call (a collection of the refills' garbage lands in some).
  for (let i = 0; i < 50; i++) {
    await client.doPut(`warm/${i}`, [schema, ...batches]);
    await client.getFlightInfo(pick());
    for await (const x of client.doGet(Buffer.from(pick()))) void x;
    await client.listFlights(`t${i % prefixes}`);
    await deletePrefix(i);
    await m.tick();
  }
  for (let i = 0; i < 1000; i++) await timed(t.put, () => client.doPut(`new/${i}`, [schema, ...batches]));
  for (let i = 0; i < 1000; i++) await timed(t.info, () => client.getFlightInfo(pick()));
  for (let i = 0; i < 1000; i++)
    await timed(t.get, async () => {
      for await (const x of client.doGet(Buffer.from(pick()))) void x;
    });
  for (let i = 0; i < 300; i++) await timed(t.list, () => client.listFlights(`t${i % prefixes}`));
  for (let i = 0; i < 1000; i++) await deletePrefix(i, del);
  for (let i = 0; i < 1000; i++) await timed(tick, () => m.tick());
  client.close();
  await app.stop();
  return {
    flights: n,
    put_p99_ms: p99(t.put),
    info_p99_ms: p99(t.info),
    get_p99_ms: p99(t.get),
    list_prefix_p99_ms: p99(t.list),
    delete_prefix_p99_ms: p99(del),
    tick_p99_ms: p99(tick),
    heap_bytes_per_flight: Math.round((after.heapUsed - before.heapUsed) / n),
    rss_bytes_per_flight: Math.round((after.rss - before.rss) / n),
    data_bytes_per_flight: Math.round(data / n),
    rss_beyond_data_per_flight: Math.round((after.rss - before.rss - data) / n),
  };
}

const small = await measure(1_000);
const big = await measure(BIG);
const keys = [
  'put_p99_ms',
  'info_p99_ms',
  'get_p99_ms',
  'list_prefix_p99_ms',
  'delete_prefix_p99_ms',
  'tick_p99_ms',
] as const;
console.log(
  `${'measure'.padEnd(22)} ${'1,000'.padStart(10)} ${BIG.toLocaleString('en').padStart(10)}  ratio (target <= 1.5)`,
);
const ratios: Record<string, number> = {};
for (const k of keys) {
  ratios[k] = big[k] / small[k];
  console.log(
    `${k.padEnd(22)} ${small[k].toFixed(3).padStart(10)} ${big[k].toFixed(3).padStart(10)}  ${ratios[k].toFixed(2)}`,
  );
}
console.log(
  `per flight at ${BIG.toLocaleString('en')}: heap ${big.heap_bytes_per_flight} B; RSS ${big.rss_bytes_per_flight} B, ` +
    `of which the flight's own data ${big.data_bytes_per_flight} B: ${big.rss_beyond_data_per_flight} B beyond it (target <= 1,000)`,
);
writeFileSync(path.join(ROOT, 'bench/results/scale.json'), JSON.stringify({ small, big, ratios }, null, 2) + '\n');
