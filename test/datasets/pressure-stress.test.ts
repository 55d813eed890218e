import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tableFromArrays, tableFromIPC, tableToIPC } from 'apache-arrow';
import { FlightCallError, FlightClient, FlightStatus } from '../../src/client/flight-client.js';
import { MEMORY_ONLY, startTestServer, type TestServer } from '../helpers/server.js';

/**
 * A stress test of the all-or-nothing rule under memory pressure: three clients at once put
 * the partitions of ten datasets in a random order, fill the tier with plain flights, and read
 * the datasets back. Every read either fails (NOT_FOUND: not complete, or lost) or returns
 * the whole table — never part of one — and once the clients stop, every dataset is either
 * NOT_FOUND or read whole.
 */
describe('partitioned datasets under memory pressure (stress)', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer(MEMORY_ONLY('8MiB'));
  });
  afterAll(async () => {
    await server?.stop();
  });

  const DATASETS = 10;
  const PARTS = 3;
  const ROWS = 60_000; // 240 KB a partition
  const part = (d: number, i: number) =>
    tableToIPC(tableFromArrays({ v: new Int32Array(ROWS).fill(d * 100 + i) }), 'stream');
  const filler = tableToIPC(tableFromArrays({ v: new Int32Array(ROWS) }), 'stream');

  /** A seeded generator (mulberry32): the same interleaving each run, different per client. */
  const random = (seed: number) => () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };

  /** Reads a dataset whole: its values per partition, or undefined when it is NOT_FOUND (anywhere in the read). */
  const readWhole = async (client: FlightClient, d: number): Promise<Map<number, number> | undefined> => {
    try {
      const table = tableFromIPC(await client.getStream(`stress/ds-${d}`));
      const counts = new Map<number, number>();
      for (const v of table.getChild('v')!.toArray() as Int32Array) counts.set(v, (counts.get(v) ?? 0) + 1);
      return counts;
    } catch (err) {
      if (err instanceof FlightCallError && err.code === FlightStatus.NOT_FOUND) return undefined;
      throw err;
    }
  };
  const whole = (d: number) => new Map(Array.from({ length: PARTS }, (_, i) => [d * 100 + i, ROWS] as const));

  it('never lets a client read part of a dataset', async () => {
    let wholeReads = 0;
    let refused = 0;
    const worker = async (seed: number) => {
      const next = random(seed);
      const client = new FlightClient(server.location);
      try {
        for (let step = 0; step < 120; step++) {
          const r = next();
          const d = Math.floor(next() * DATASETS);
          if (r < 0.5) {
            const i = Math.floor(next() * PARTS);
            await client.putStream(`stress/ds-${d}`, part(d, i), { 'x-tierflight-partition': `${i}/${PARTS}` });
          } else if (r < 0.7) {
            await client.putStream(`stress/fill-${Math.floor(next() * 40)}`, filler);
          } else {
            const got = await readWhole(client, d);
            if (got === undefined) refused++;
            else {
              expect(got).toEqual(whole(d));
              wholeReads++;
            }
          }
        }
      } finally {
        client.close();
      }
    };
    await Promise.all([1, 2, 3].map(worker));
    // Quiet now: each dataset is NOT_FOUND or whole.
    const client = new FlightClient(server.location);
    for (let d = 0; d < DATASETS; d++) {
      const got = await readWhole(client, d);
      if (got !== undefined) expect(got).toEqual(whole(d));
    }
    client.close();
    const metrics = await server.app.metrics.registry.metrics();
    const lost = [...metrics.matchAll(/^tierflight_datasets_lost_total\{reason="\w+"\} (\d+)$/gm)].reduce(
      (n, m) => n + Number(m[1]),
      0,
    );
    // The run did what it is for: datasets were read whole, and others were lost to eviction.
    expect(wholeReads).toBeGreaterThan(0);
    expect(lost).toBeGreaterThan(0);
    console.log(`dataset stress: ${wholeReads} whole reads, ${refused} NOT_FOUND, ${lost} datasets lost to eviction`);
    server.app.manager.checkAccounting();
  });
});
