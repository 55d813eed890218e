import { flightPath } from '../../src/core/path.js';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import type { PlacementEvent } from '../../src/storage/events.js';
import { createManager, expected, frame, putFlight, readLease, type TestManager } from '../helpers/manager.js';

// A put that runs past its tier's maxFlightSize by no more than the spill leeway (an
// eighth of maxFlightSize here: 8 KiB) is acknowledged from that tier and moved down
// right after; one that runs further spills while it arrives, as before; a tier that
// rejects oversize puts has no leeway.

const CONFIG = `storageTypes:
  memory: { capacity: 1MiB }
  disk_mapped: { path: $DIR/mapped, capacity: $BELOW }
storageClasses:
  - name: spilling
    prefix: s
    tiers:
      - { storage: memory, maxFlightSize: 64KiB, uploadSpill: spill }
      - { storage: disk_mapped }
  - name: strict
    prefix: r
    tiers:
      - { storage: memory, maxFlightSize: 64KiB }
      - { storage: disk_mapped }
`;

let t: TestManager | undefined;
afterEach(async () => {
  await t?.manager.close(1000);
  await t?.cleanup();
  t = undefined;
});

async function setup(below = '4MiB'): Promise<{ t: TestManager; events: PlacementEvent[]; clock: ManualClock }> {
  const clock = new ManualClock(0);
  const events: PlacementEvent[] = [];
  t = await createManager(CONFIG.replace('$BELOW', below), clock, (e) => events.push(e));
  return { t, events, clock };
}

/** 17 frames of 4,000 bytes: 68,000 bytes of messages, past 64 KiB (65,536) and within 72 KiB. */
const JUST_OVER = Array.from({ length: 17 }, (_, i) => frame(i + 1, 4000));
/** 20 frames: 80,000 bytes, past the leeway. */
const WELL_OVER = Array.from({ length: 20 }, (_, i) => frame(i + 100, 4000));

const where = (m: TestManager['manager'], path: string) => m.lookup(flightPath([path])).storage;
const kinds = (events: PlacementEvent[]) =>
  events.map((e) => (e.type === 'put' ? `put:${e.storage}` : e.type === 'spill' ? `spill:${e.from}>${e.to}` : e.type));

describe('the spill leeway', () => {
  it('acknowledges a flight just over maxFlightSize from its tier, then moves it down', async () => {
    const { t, events } = await setup();
    const m = t.manager;
    await putFlight(m, 's/just', JUST_OVER);
    // Acknowledged from memory: the move runs after the put.
    expect(kinds(events)).toEqual(['put:memory']);
    await m.idle();
    expect(where(m, 's/just')).toBe('disk_mapped');
    expect(kinds(events)).toEqual(['put:memory', 'spill:memory>disk_mapped']);
    expect(m.stats().storageTypes.memory?.used).toBe(0);
    m.checkAccounting();
    const lease = await m.open(flightPath(['s/just']));
    try {
      expect(await readLease(lease)).toEqual(expected(JUST_OVER));
    } finally {
      lease.release();
    }
  });

  it('spills a flight past the leeway while it arrives, and has no leeway where uploadSpill is reject', async () => {
    const { t, events } = await setup();
    const m = t.manager;
    await putFlight(m, 's/well', WELL_OVER);
    expect(kinds(events)).toEqual(['spill:memory>disk_mapped', 'put:disk_mapped']);
    expect(where(m, 's/well')).toBe('disk_mapped');
    await expect(putFlight(m, 'r/just', JUST_OVER)).rejects.toThrow(
      /exceeds maxFlightSize 64KiB.*uploadSpill is "reject"/,
    );
    // A flight within maxFlightSize stays.
    await putFlight(m, 's/under', [frame(1, 60_000)]);
    await m.idle();
    expect(where(m, 's/under')).toBe('memory');
    m.checkAccounting();
  });

  it('keeps the flight readable where it is while the tier below has no room, and moves it once it has', async () => {
    const { t, events, clock } = await setup('128KiB');
    const m = t.manager;
    // A pinned flight holds most of the tier below: nothing there can be evicted for the move.
    await putFlight(m, 's/well', WELL_OVER);
    m.pin(flightPath(['s/well']));
    await putFlight(m, 's/just', JUST_OVER);
    await m.idle();
    expect(where(m, 's/just')).toBe('memory');
    expect(events.find((e) => e.type === 'relocation-failed')).toMatchObject({ operation: 'spill', cause: 'no-room' });
    const read = async (): Promise<void> => {
      const lease = await m.open(flightPath(['s/just']));
      try {
        expect(await readLease(lease)).toEqual(expected(JUST_OVER));
      } finally {
        lease.release();
      }
    };
    await read();

    // Looked at again later: still no room, still readable in memory.
    clock.advance(6_000);
    await m.tick();
    expect(where(m, 's/just')).toBe('memory');

    expect(m.delete(flightPath(['s/well']))).toBe(true);
    clock.advance(6_000);
    await m.tick();
    expect(where(m, 's/just')).toBe('disk_mapped');
    await read();
    m.checkAccounting();
  });

  it('a read opened at any step of the move after the put reads the whole flight', async () => {
    const { t } = await setup();
    const m = t.manager;
    const step = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
    const where = new Set<string | undefined>();
    // The move down starts with the put's publish; the read opens `d` event-loop turns in,
    // and last once the move is done.
    for (const d of [0, 1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, Infinity]) {
      const data = JUST_OVER.map((_, i) => frame((d === Infinity ? 99 : d) * 100 + i, 4000));
      await putFlight(m, 's/just', data);
      if (d === Infinity) await m.idle();
      for (let i = 0; i < d && d !== Infinity; i++) await step();
      const lease = await m.open(flightPath(['s/just']));
      where.add(lease.version.storage);
      try {
        expect(await readLease(lease)).toEqual(expected(data));
      } finally {
        lease.release();
      }
      await m.idle();
      expect(m.lookup(flightPath(['s/just'])).storage).toBe('disk_mapped');
      m.checkAccounting();
    }
    // Reads landed on both sides of the switch (the first before the move could finish, the last after it).
    expect([...where].sort()).toEqual(['disk_mapped', 'memory']);
  });
});
