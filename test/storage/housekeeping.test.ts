import { flightPath } from '../../src/core/path.js';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { Deadlines } from '../../src/core/deadlines.js';
import { FlightVersion } from '../../src/storage/flight.js';
import { createManager, frame, putFlight, type TestManager } from '../helpers/manager.js';

// Housekeeping costs what is due: expiry and moveAfter come from deadline heaps, so a tick
// with nothing due touches no flight, and one with k due touches about k.

const CONFIG = `storageTypes:
  memory: { capacity: 64MiB }
  disk_mapped: { path: $DIR/mapped, capacity: 64MiB }
storageClasses:
  - name: d
    prefix: ""
    ttl: 1h
    tiers:
      - { storage: memory, moveAfter: 30m }
      - { storage: disk_mapped }
`;

let t: TestManager | undefined;
afterEach(async () => {
  vi.restoreAllMocks();
  await t?.cleanup();
  t = undefined;
});

describe('deadlines', () => {
  it('pops what is due, earliest first, and compacts away entries of items that went', () => {
    const d = new Deadlines<string>();
    for (const [item, at] of [
      ['c', 30],
      ['a', 10],
      ['b', 20],
      ['z', 100],
    ] as const)
      d.schedule(item, at);
    expect([...d.due(25)]).toEqual(['a', 'b']);
    expect([...d.due(25)]).toEqual([]);
    for (let i = 0; i < 5000; i++) d.schedule(`gone-${i}`, 1000 + i);
    d.compact(2, (item) => !item.startsWith('gone'));
    expect(d.size).toBe(2);
    expect([...d.due(1_000_000)]).toEqual(['c', 'z']);
  });
});

describe('housekeeping with 2,000 flights', () => {
  it('a tick with nothing due looks at no flight; expiry and moves look at the ones due', async () => {
    const clock = new ManualClock(0);
    t = await createManager(CONFIG, clock);
    const m = t.manager;
    for (let i = 0; i < 2000; i++) {
      if (i === 1000) clock.advance(20 * 60_000); // the second thousand 20 minutes later
      await putFlight(m, `f/${i}`, [frame(i, 200)]);
    }
    const looked = vi.spyOn(FlightVersion.prototype, 'isExpired');
    clock.advance(5 * 60_000);
    await m.tick();
    expect(looked).not.toHaveBeenCalled();
    // 30 minutes after the first thousand: those move to disk_mapped, the rest stay.
    clock.advance(6 * 60_000);
    await m.tick();
    const where = () => {
      const counts: Record<string, number> = {};
      for (const v of m.list('f')) counts[v.storage ?? 'durable'] = (counts[v.storage ?? 'durable'] ?? 0) + 1;
      return counts;
    };
    expect(where()).toEqual({ disk_mapped: 1000, memory: 1000 });
    // A read puts off a move: read one of the second thousand just before its time.
    clock.advance(18 * 60_000);
    (await m.open(flightPath(['f/1500']))).release();
    clock.advance(2 * 60_000);
    await m.tick();
    expect(where()).toEqual({ disk_mapped: 1999, memory: 1 });
    // One hour after the first thousand were put: only they expire, the only ones looked at.
    looked.mockClear();
    clock.advance(60 * 60_000 - 51 * 60_000);
    expect(m.sweepExpired()).toBe(1000);
    expect(looked.mock.calls.length).toBeLessThanOrEqual(1000 + 50);
    m.checkAccounting();
  });
});

describe('prefix work with 20,000 flights', () => {
  it('a prefix listing or delete looks only at the flights under the prefix', async () => {
    const clock = new ManualClock(0);
    t = await createManager(CONFIG, clock);
    const m = t.manager;
    for (let i = 0; i < 20_000; i++) await putFlight(m, `t${i % 2000}/f${i}`, [frame(i, 64)]);
    const looked = vi.spyOn(FlightVersion.prototype, 'isExpired');
    expect(m.list('t7').map((v) => v.path)).toEqual(Array.from({ length: 10 }, (_, k) => `t7/f${7 + 2000 * k}`).sort());
    expect(looked.mock.calls.length).toBe(10);
    looked.mockClear();
    expect(m.deletePrefix('t70')).toBe(10);
    expect(looked).not.toHaveBeenCalled();
    expect(m.list('t7').length).toBe(10); // t70 is not under t7 (whole segments)
    m.checkAccounting();
  });
});
