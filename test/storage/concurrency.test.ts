import { afterEach, describe, expect, it } from 'vitest';
import type { FlightLease } from '../../src/storage/manager.js';
import { ManualClock } from '../../src/core/clock.js';
import { createManager, expected, frame, putFlight, type TestManager } from '../helpers/manager.js';

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
    const reader = await partialRead(await m.open(['a']), 2);
    clock.advance(61_000);
    await m.tick();
    expect(m.lookup(['a']).storage).toBe('disk_mapped');
    // The memory copy is still charged: its reader is not done.
    expect(m.stats().storageTypes.memory?.pinnedRetired).toBeGreaterThan(0);
    m.checkAccounting();
    // Two new reads promote it back to memory while a disk_mapped reader is mid-stream.
    const onDisk = await partialRead(await m.open(['a']), 1);
    const second = await m.open(['a']);
    await m.idle();
    expect(m.lookup(['a']).storage).toBe('memory');
    second.release();
    expect(await reader.rest()).toEqual(expected(data));
    expect(await onDisk.rest()).toEqual(expected(data));
    m.checkAccounting();
    expect(m.stats().storageTypes.disk_mapped).toMatchObject({ used: 0, pinnedRetired: 0 });
  });

  it('a reader keeps the version it opened when the flight is overwritten, deleted or expires', async () => {
    const clock = new ManualClock(0);
    t = await createManager(CONFIG, clock);
    const m = t.manager;
    const v1 = frames(2);
    await putFlight(m, 'a', v1);
    const r1 = await partialRead(await m.open(['a']), 3);
    const v2 = frames(3, 3);
    await putFlight(m, 'a', v2);
    const r2 = await partialRead(await m.open(['a']), 1);
    expect(m.delete(['a'])).toBe(true);
    await putFlight(m, 'b', frames(4));
    const r3 = await partialRead(await m.open(['b']), 1);
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
    expect(m.lookup(['a']).relocating).toBe(true);
    const reader = await partialRead(await m.open(['a']), 1);
    await put;
    expect(m.lookup(['a']).storage).toBe('disk_mapped');
    expect(await reader.rest()).toEqual(expected(data));
    const again = await m.open(['a']);
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
    const lease = await m.open(['a']);
    await putFlight(m, 'c', frames(10, 3, 6000)); // evicts b, not the pinned a
    expect(m.list().map((v) => v.path)).toEqual(['a', 'c']);
    const lease2 = await m.open(['c']);
    await expect(putFlight(m, 'd', frames(11, 3, 6000))).rejects.toThrow(/memory is full/);
    lease.release();
    lease2.release();
    m.checkAccounting();
  });
});
