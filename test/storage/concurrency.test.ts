import { flightPath } from '../../src/core/path.js';
import { afterEach, describe, expect, it } from 'vitest';
import type { FlightLease } from '../../src/storage/manager.js';
import { ManualClock } from '../../src/core/clock.js';
import { createManager, expected, frame, putFlight, readLease, type TestManager } from '../helpers/manager.js';

// Readers streaming a flight while it is moved, promoted, evicted to the next tier,
// overwritten, deleted or expired get complete, correct data; the old copy's bytes stay
// charged until the last reader finishes, then go.

const CONFIG = `storageTypes:
  memory: { capacity: 64KiB }
  disk_mapped: { path: $DIR/mapped, capacity: 1MiB }
  disk: { path: $DIR/disk, capacity: 1MiB }
storageClasses:
  - name: default
    prefix: ""
    ttl: 1h
    tiers:
      - { storage: memory, moveAfter: 1m, evictionSpill: true }
      - { storage: disk_mapped, promoteAfter: { accesses: 2, within: 1m }, moveAfter: 1m }
      - { storage: disk }
`;

let t: TestManager | undefined;
afterEach(async () => {
  await t?.cleanup();
  t = undefined;
});

const frames = (seed: number, n = 6, bytes = 4000) => Array.from({ length: n }, (_, i) => frame(seed * 100 + i, bytes));

/** Starts reading a lease, takes `first` messages, and returns a function that reads the rest. */
async function partialRead(
  lease: FlightLease,
  first: number,
): Promise<{ got: Buffer[]; rest: () => Promise<Buffer[]> }> {
  const it = lease.read(lease.version.allMessages())[Symbol.asyncIterator]();
  const got: Buffer[] = [];
  for (let i = 0; i < first; i++) {
    const r = await it.next();
    if (!r.done) got.push(Buffer.concat([r.value.header, r.value.body, r.value.appMetadata]));
  }
  return {
    got,
    rest: async () => {
      for (let r = await it.next(); !r.done; r = await it.next()) {
        got.push(Buffer.concat([r.value.header, r.value.body, r.value.appMetadata]));
      }
      lease.release();
      return got;
    },
  };
}

describe('readers during placement changes', () => {
  it('a reader finishes on the old copy while the flight moves down and is promoted back', async () => {
    const clock = new ManualClock(0);
    t = await createManager(CONFIG, clock);
    const m = t.manager;
    const data = frames(1);
    await putFlight(m, 'a', data);
    const reader = await partialRead(await m.open(flightPath(['a'])), 2);
    clock.advance(61_000);
    await m.tick();
    expect(m.lookup(flightPath(['a'])).storage).toBe('disk_mapped');
    // The memory copy is still charged: its reader is not done.
    expect(m.stats().storageTypes.memory?.pinnedRetired).toBeGreaterThan(0);
    m.checkAccounting();
    // Two new reads promote it back to memory while a disk_mapped reader is mid-stream.
    const onDisk = await partialRead(await m.open(flightPath(['a'])), 1);
    const second = await m.open(flightPath(['a']));
    await m.idle();
    expect(m.lookup(flightPath(['a'])).storage).toBe('memory');
    second.release();
    expect(await reader.rest()).toEqual(expected(data));
    expect(await onDisk.rest()).toEqual(expected(data));
    m.checkAccounting();
    // The disk_mapped copy stays as the flight's clean copy once its reader is done.
    const mapped = m.stats().storageTypes.disk_mapped;
    expect(mapped).toMatchObject({ flights: 0, pinnedRetired: 0 });
    expect(mapped?.clean).toBeGreaterThan(0);
    expect(mapped?.used).toBe(mapped?.clean);
  });

  it('a reader keeps the version it opened when the flight is overwritten, deleted or expires', async () => {
    const clock = new ManualClock(0);
    t = await createManager(CONFIG, clock);
    const m = t.manager;
    const v1 = frames(2);
    await putFlight(m, 'a', v1);
    const r1 = await partialRead(await m.open(flightPath(['a'])), 3);
    const v2 = frames(3, 3);
    await putFlight(m, 'a', v2);
    const r2 = await partialRead(await m.open(flightPath(['a'])), 1);
    expect(m.delete(flightPath(['a']))).toBe(true);
    await putFlight(m, 'b', frames(4));
    const r3 = await partialRead(await m.open(flightPath(['b'])), 1);
    clock.advance(3_600_000);
    expect(m.sweepExpired()).toBe(1);
    expect(await r1.rest()).toEqual(expected(v1));
    expect(await r2.rest()).toEqual(expected(v2));
    expect(await r3.rest()).toEqual(expected(frames(4)));
    m.checkAccounting();
    expect(m.stats().storageTypes.memory?.used).toBe(0);
  });

  it('a reader that opens a flight while it is being evicted to the next tier reads it whole', async () => {
    const clock = new ManualClock(0);
    t = await createManager(CONFIG, clock);
    const m = t.manager;
    const data = frames(5, 6, 5000); // ~30 KiB each: two fill most of memory
    await putFlight(m, 'a', data);
    await putFlight(m, 'b', frames(6, 6, 5000));
    // This put needs room: 'a' (least recently used) is copied to disk_mapped meanwhile.
    const put = putFlight(m, 'c', frames(7, 6, 5000));
    await new Promise((r) => setImmediate(r));
    expect(m.lookup(flightPath(['a'])).relocating).toBe(true);
    const reader = await partialRead(await m.open(flightPath(['a'])), 1);
    await put;
    expect(m.lookup(flightPath(['a'])).storage).toBe('disk_mapped');
    expect(await reader.rest()).toEqual(expected(data));
    const again = await m.open(flightPath(['a']));
    expect(again.version.storage).toBe('disk_mapped');
    again.release();
    m.checkAccounting();
    expect(m.list().map((v) => v.path)).toEqual(['a', 'b', 'c']);
  });

  it('skips copies being read when evicting, and says so when nothing else can go', async () => {
    const clock = new ManualClock(0);
    t = await createManager(
      `storageTypes: { memory: { capacity: 40KiB } }
storageClasses: [{ name: d, prefix: "", tiers: [{ storage: memory }] }]
`,
      clock,
    );
    const m = t.manager;
    await putFlight(m, 'a', frames(8, 3, 6000));
    await putFlight(m, 'b', frames(9, 3, 6000));
    const lease = await m.open(flightPath(['a']));
    await putFlight(m, 'c', frames(10, 3, 6000)); // evicts b, not the pinned a
    expect(m.list().map((v) => v.path)).toEqual(['a', 'c']);
    const lease2 = await m.open(flightPath(['c']));
    await expect(putFlight(m, 'd', frames(11, 3, 6000))).rejects.toThrow(/memory is full/);
    lease.release();
    lease2.release();
    m.checkAccounting();
  });

  it('a read opened as its flight is deleted, replaced or evicted never gets a copy emptied under it', async () => {
    const clock = new ManualClock(0);
    t = await createManager(CONFIG, clock);
    const m = t.manager;
    // The lookup and the pin are one step apart (the copy's check is awaited): a delete in
    // that gap used to hand out the freed copy, whose read failed ("has no message 0").
    await putFlight(m, 'gone', frames(12));
    const opening = m.open(flightPath(['gone']));
    m.delete(flightPath(['gone']));
    await expect(opening).rejects.toMatchObject({ code: 'NOT_FOUND' });
    m.checkAccounting();
  });

  it('a read started at any step of a replace, delete, spill or move reads a whole version or NOT_FOUND', async () => {
    // Every interleaving, stepped through: the change starts, the read opens after `d`
    // microtasks (memory tiers only await microtasks), for every d until the change is done.
    const clock = new ManualClock(0);
    t = await createManager(CONFIG, clock);
    const m = t.manager;
    const microtasks = async (n: number): Promise<void> => {
      for (let i = 0; i < n; i++) await Promise.resolve();
    };
    const versions = new Set<string>();
    const put = (path: string, seed: number, n = 3): Promise<void> => {
      const data = frames(seed, n, 3000);
      versions.add(
        expected(data)
          .map((b) => b.toString('hex'))
          .join(),
      );
      return putFlight(m, path, data);
    };
    const changes: Record<string, (seed: number) => Promise<unknown>> = {
      replace: (seed) => put('p', seed),
      delete: async () => m.delete(flightPath(['p'])),
      // Two more flights need room in memory: 'p' (least recently used) spills to disk_mapped.
      spill: (seed) => Promise.all([put('q', seed + 1, 6), put('r', seed + 2, 6)]),
      move: async () => {
        clock.advance(61_000);
        await m.tick();
      },
    };
    const outcomes = { whole: 0, notFound: 0 };
    const failures: string[] = [];
    let seed = 2000;
    for (const [name, change] of Object.entries(changes)) {
      for (let d = 0; d < 60; d++) {
        m.deletePrefix('');
        await put('p', (seed += 3));
        const changing = change((seed += 3));
        await microtasks(d);
        try {
          const lease = await m.open(flightPath(['p']));
          const got = (await readLease(lease)).map((b) => b.toString('hex')).join();
          lease.release();
          if (versions.has(got)) outcomes.whole++;
          else failures.push(`${name} after ${d} microtasks: the read mixed or lost messages`);
        } catch (err) {
          if ((err as { code?: string }).code === 'NOT_FOUND') outcomes.notFound++;
          else failures.push(`${name} after ${d} microtasks: ${(err as Error).message}`);
        }
        await changing;
        await m.idle();
        m.checkAccounting();
      }
    }
    expect(failures.slice(0, 5)).toEqual([]);
    expect(outcomes.whole).toBeGreaterThan(100);
  });
});
