/**
 * `npm run bench:limits`: what an `evict` limit costs a put as flights accumulate. A
 * standard limit holds exactly N small flights, so every further put evicts one (the least
 * recently read); this measures put latency (p50, p99 of 2,000 puts) at N = 1,000 and at
 * N = BENCH_LIMIT_FLIGHTS (1,000,000), in process on the storage manager (no gRPC), and
 * prints their ratio. Writes bench/results/limits.json.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseConfigText } from '../src/config/load.js';
import { ManualClock } from '../src/core/clock.js';
import { StorageManager } from '../src/storage/manager.js';
import { frame, putFlight } from '../test/helpers/manager.js';
import { ROOT } from '../test/setup/python-env.js';

const BIG = Number(process.env.BENCH_LIMIT_FLIGHTS ?? 1_000_000);
const PUTS = 2_000;
const FLIGHT_BYTES = 64;

async function measure(flights: number): Promise<{ flights: number; p50_ms: number; p99_ms: number }> {
  const clock = new ManualClock(1_700_000_000_000);
  const manager = new StorageManager({
    clock,
    config: parseConfigText(
      `storageTypes:\n  memory: { capacity: 64GiB }\n` +
        `storageClasses:\n  - { name: all, prefix: "", tiers: [{ storage: memory }] }\n` +
        `limitPolicies:\n  - { name: cap, type: standard, classes: [all], scope: ephemeral, onLimit: evict, limit: ${flights * FLIGHT_BYTES} }\n`,
      'limits-bench.yaml',
    ),
  });
  await manager.init();
  for (let i = 0; i < flights; i++) {
    await putFlight(manager, `f/${i}`, [frame(i, FLIGHT_BYTES)]);
    clock.advance(1);
  }
  const times: number[] = [];
  for (let i = 0; i < PUTS; i++) {
    clock.advance(1);
    const started = performance.now();
    await putFlight(manager, `new/${i}`, [frame(i, FLIGHT_BYTES)]);
    times.push(performance.now() - started);
  }
  if (manager.stats().flights !== flights) throw new Error(`expected ${flights} flights after evicting`);
  times.sort((a, b) => a - b);
  return {
    flights,
    p50_ms: times[Math.floor(PUTS / 2)] as number,
    p99_ms: times[Math.floor(PUTS * 0.99)] as number,
  };
}

const small = await measure(1_000);
const big = await measure(BIG);
const ratio = big.p99_ms / small.p99_ms;
console.log(`put with one limit eviction each, ${PUTS} puts`);
for (const r of [small, big]) {
  console.log(`${String(r.flights).padStart(9)} flights: p50 ${r.p50_ms.toFixed(3)} ms, p99 ${r.p99_ms.toFixed(3)} ms`);
}
console.log(`p99 ratio ${BIG} / 1000 flights: ${ratio.toFixed(2)} (target <= 1.5)`);
writeFileSync(path.join(ROOT, 'bench/results/limits.json'), JSON.stringify({ small, big, ratio }, null, 2) + '\n');
