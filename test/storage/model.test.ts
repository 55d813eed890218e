import { flightPath } from '../../src/core/path.js';
import { describe, expect, it } from 'vitest';
import type { PlacementEvent } from '../../src/storage/events.js';
import { ManualClock } from '../../src/core/clock.js';
import { createManager, expected, frame, putFlight, readLease } from '../helpers/manager.js';

// A model-based randomized test of the placement engine on real storage types. Random
// puts (sizes and classes), reads, range reads, deletes, overwrites, aborted puts and
// clock advances run against a reference model; after every step the accounting must
// equal the sum of the copies, no storage type may exceed its capacity, the visible
// flights must be exactly the model's (minus what the engine reported evicting or
// expiring), and nothing expired may be served. Every few steps, and at the end, every
// flight is read back bit-exact from whichever tier holds it.
//
// Reproduce a failure with TIERFLIGHT_MODEL_SEED=<seed printed in the failure>.

const SEQUENCES = Number(process.env.TIERFLIGHT_MODEL_SEQUENCES ?? 1000);
const STEPS = Number(process.env.TIERFLIGHT_MODEL_STEPS ?? 25);
const BASE_SEED = Number(process.env.TIERFLIGHT_MODEL_SEED ?? 20261122);

const CONFIG = `storageTypes:
  memory: { capacity: 24KiB }
  disk_mapped: { path: $DIR/mapped, capacity: 48KiB }
  disk: { path: $DIR/disk, capacity: 96KiB }
storageClasses:
  - name: hot
    prefix: hot
    tiers:
      - { storage: memory, maxFlightSize: 8KiB, uploadSpill: spill, evictionSpill: true, moveAfter: 30s, priority: 1 }
      - { storage: disk_mapped, uploadSpill: spill, evictionSpill: true, promoteAfter: { accesses: 2, within: 20s } }
      - { storage: disk }
  - name: scratch
    prefix: scratch
    ttl: 45s
    tiers:
      - { storage: memory }
  - name: cold
    prefix: cold
    tiers:
      - { storage: disk_mapped, maxFlightSize: 16KiB, uploadSpill: spill, moveAfter: 20s }
      - { storage: disk, promoteAfter: { accesses: 3, within: 30s } }
`;

const PATHS = ['hot/a', 'hot/b', 'hot/c', 'hot/d/e', 'scratch/x', 'scratch/y', 'cold/p', 'cold/q', 'cold/r'];
const TTL: Record<string, number | undefined> = { scratch: 45_000 };

function rng(seed: number): (n: number) => number {
  let s = seed >>> 0 || 1;
  return (n) => {
    // xorshift32: fast, seedable, good enough to pick operations.
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s % n;
  };
}

/** Byte equality of two message lists (vitest's deep equality is slow on large buffers). */
function same(a: Buffer[], b: Buffer[]): boolean {
  return a.length === b.length && a.every((x, i) => x.equals(b[i] as Buffer));
}

interface ModelFlight {
  data: Buffer[];
  expiresAt: number | undefined;
  versionTag: string;
}

describe('placement engine against a reference model', () => {
  it(`keeps every invariant over ${SEQUENCES} random sequences of ${STEPS} steps`, { timeout: 900_000 }, async () => {
    const clock = new ManualClock(0);
    const events: PlacementEvent[] = [];
    const seen = new Map<string, number>();
    const t = await createManager(CONFIG, clock, (e) => {
      events.push(e);
      const key = e.type === 'evict' ? `evict-${e.outcome}` : e.type;
      seen.set(key, (seen.get(key) ?? 0) + 1);
    });
    let steps = 0;
    let reads = 0;
    try {
      for (let seq = 0; seq < SEQUENCES; seq++) {
        const seed = BASE_SEED + seq;
        const rand = rng(seed);
        const m = t.manager;
        // Each sequence starts from an empty engine: delete what the last one left.
        m.deletePrefix('');
        const model = new Map<string, ModelFlight>();
        let frameSeed = seed * 1000;
        const where = (step: number, what: string): string => `seed ${seed} step ${step}: ${what}`;

        // What the engine legitimately dropped leaves the model (nothing here is durable).
        // Reads count too: a read may promote a flight, and the promotion may evict others.
        const absorb = (): void => {
          for (const e of events) {
            if ((e.type === 'evict' && e.outcome === 'dropped') || e.type === 'expire') {
              const mf = model.get(e.version.path);
              if (mf?.versionTag === e.version.tag) model.delete(e.version.path);
            }
          }
          events.length = 0;
          const now = clock.now();
          for (const [p, f] of model) if (f.expiresAt !== undefined && now >= f.expiresAt) model.delete(p);
        };

        const verifyAll = async (step: number): Promise<void> => {
          for (const path of [...model.keys()]) {
            absorb();
            const f = model.get(path);
            if (!f) continue;
            const lease = await m.open(flightPath([path]));
            try {
              expect(same(await readLease(lease), f.data), where(step, `read ${path}`)).toBe(true);
            } finally {
              lease.release();
            }
            reads++;
            await m.idle();
          }
          absorb();
          expect(
            m.list().map((v) => v.path),
            where(step, 'visible after reads'),
          ).toEqual([...model.keys()].sort());
        };

        for (let step = 0; step < STEPS; step++) {
          steps++;
          const path = PATHS[rand(PATHS.length)] as string;
          const op = rand(20);
          if (op < 8) {
            // put or overwrite: 0–5 messages of 16 B to 6 KiB
            const n = rand(6);
            const data = Array.from({ length: n }, () => frame(frameSeed++, 16 + rand(6000)));
            const abort = rand(10) === 0;
            try {
              if (abort) {
                const s = await m.beginPut(flightPath([path]));
                for (const f of data.slice(0, 2)) await s.append(f).catch(() => undefined);
                await s.abort();
              } else {
                await putFlight(
                  m,
                  path,
                  data,
                  rand(4) === 0 ? data.reduce((a, f) => a + f.body.length + 64, 400) : undefined,
                );
                const v = m.lookup(flightPath([path]));
                const ttl = TTL[path.split('/')[0] as string];
                model.set(path, {
                  data: expected(data),
                  expiresAt: ttl === undefined ? undefined : clock.now() + ttl,
                  versionTag: v.tag,
                });
              }
            } catch (err) {
              expect((err as Error).message, where(step, 'put error')).toMatch(/is full|exceeds|fits no tier/);
            }
          } else if (op < 13) {
            const f = model.get(path);
            if (f && (f.expiresAt === undefined || clock.now() < f.expiresAt)) {
              const lease = await m.open(flightPath([path]));
              const count = lease.version.batchCount;
              const from = rand(count + 1);
              const to = from + rand(count - from + 1);
              const got = await readLease(lease, lease.version.messagesFor({ from, to }));
              lease.release();
              expect(same(got, f.data.slice(from, to)), where(step, `range read ${path}`)).toBe(true);
              reads++;
            } else {
              await expect(m.open(flightPath([path])), where(step, `open of absent ${path}`)).rejects.toThrow(
                /not found/,
              );
            }
          } else if (op < 15) {
            expect(m.delete(flightPath([path])), where(step, `delete ${path}`)).toBe(model.delete(path));
          } else {
            clock.advance(rand(25_000));
            await m.tick();
          }
          await m.idle();

          absorb();
          const now = clock.now();

          m.checkAccounting();
          const visible = m.list().map((v) => v.path);
          expect(visible, where(step, 'visible flights')).toEqual([...model.keys()].sort());
          for (const v of m.list()) {
            expect(v.isExpired(now), where(step, `expired ${v.path} listed`)).toBe(false);
            expect(v.tag, where(step, `version of ${v.path}`)).toBe(model.get(v.path)?.versionTag);
          }
          if (step % 8 === 7) await verifyAll(step);
        }
        await verifyAll(STEPS);
        m.checkAccounting();
      }
    } finally {
      await t.cleanup();
    }
    expect(steps).toBe(SEQUENCES * STEPS);
    expect(reads).toBeGreaterThan(steps / 2);
    if (process.env.TIERFLIGHT_MODEL_VERBOSE) console.log(Object.fromEntries(seen));
    // The run exercised every kind of placement decision, not just puts and reads.
    for (const kind of ['put', 'hit', 'miss', 'spill', 'evict-dropped', 'evict-spilled', 'move', 'promote', 'expire']) {
      expect(seen.get(kind) ?? 0, `${kind} events`).toBeGreaterThan(SEQUENCES / 50);
    }
  });
});
