import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { flightPath } from '../../src/core/path.js';
import { ManualClock } from '../../src/core/clock.js';
import { parseConfigText } from '../../src/config/load.js';
import type { PlacementEvent } from '../../src/storage/events.js';
import { createManager, expected, frame, putFlight, readLease, type TestManager } from '../helpers/manager.js';

// A promotion leaves the flight's lower copy in place, clean: moving the flight back down
// (eviction with evictionSpill, moveAfter) makes that copy current again instead of writing
// the flight anew; a lower tier that needs room drops clean copies before anything else;
// deleting or replacing the flight frees both copies. The accounting holds throughout.

const CONFIG = `storageTypes:
  memory: { capacity: 56KiB }
  disk_mapped: { path: $DIR/mapped, capacity: 80KiB }
storageClasses:
  - name: default
    prefix: ""
    tiers:
      - { storage: memory, evictionSpill: true, moveAfter: 10m }
      - { storage: disk_mapped, promoteAfter: { accesses: 2, within: 1m } }
  - name: mapped
    prefix: tier
    tiers:
      - { storage: disk_mapped }
`;

let t: TestManager | undefined;
afterEach(async () => {
  await t?.cleanup();
  t = undefined;
});

/** A flight of 6 messages of 4000 bytes (~24 KiB stored). */
const frames = (seed: number) => Array.from({ length: 6 }, (_, i) => frame(seed * 100 + i, 4000));

async function setup() {
  const clock = new ManualClock(0);
  const events: PlacementEvent[] = [];
  t = await createManager(CONFIG, clock, (e) => void events.push(e));
  const m = t.manager;
  const mapped = path.join(t.dir, 'mapped');
  const files = async () => (await readdir(mapped)).filter((f) => f.startsWith('flight-')).sort();
  /** The files, once removals under way are done (a freed copy's file goes in the background). */
  const settledFiles = async (count: number) => {
    for (let i = 0; i < 100 && (await files()).length !== count; i++) await new Promise((r) => setTimeout(r, 10));
    return files();
  };
  const read = async (p: string) => {
    const lease = await m.open(flightPath([p]));
    try {
      return await readLease(lease);
    } finally {
      lease.release();
    }
  };
  /** Puts `a`, pushes it down to disk_mapped (idle past moveAfter), and reads it twice: promoted. */
  const promoted = async (p: string, data: ReturnType<typeof frames>) => {
    await putFlight(m, p, data);
    clock.advance(11 * 60_000);
    await m.tick();
    await m.idle();
    expect(m.lookup(flightPath([p])).storage).toBe('disk_mapped');
    expect(await read(p)).toEqual(expected(data));
    expect(await read(p)).toEqual(expected(data));
    await m.idle();
    expect(m.lookup(flightPath([p])).storage).toBe('memory');
  };
  /** disk_mapped holds nothing: no file, no bytes, no clean copy. */
  const mappedEmpty = async () => {
    await m.idle();
    expect(await settledFiles(0)).toEqual([]);
    expect(m.stats().storageTypes.disk_mapped).toMatchObject({ used: 0, clean: 0 });
  };
  return { m, clock, events, files, settledFiles, mappedEmpty, read, promoted };
}

describe('clean copies of promoted flights', () => {
  it('an eviction to the tier where the clean copy is writes nothing: that copy becomes current', async () => {
    const { m, events, files, read, promoted } = await setup();
    const a = frames(1);
    await promoted('a', a);
    const kept = await files();
    expect(kept).toHaveLength(1);
    const mapped = m.stats().storageTypes.disk_mapped!;
    expect(mapped).toMatchObject({ flights: 0, clean: mapped.used });
    m.checkAccounting();

    // b and c fill memory: a (least recently used) is evicted, onto its clean copy.
    await putFlight(m, 'b', frames(2));
    await putFlight(m, 'c', frames(3));
    await m.idle();
    expect(m.lookup(flightPath(['a'])).storage).toBe('disk_mapped');
    expect(await files()).toEqual(kept); // the same file: nothing was written for a
    expect(m.stats().storageTypes.disk_mapped).toMatchObject({ flights: 1, clean: 0, used: mapped.used });
    expect(
      events.filter((e) => e.type === 'evict' && e.version.path === 'a').map((e) => (e as { outcome: string }).outcome),
    ).toEqual(['spilled']);
    expect(await read('a')).toEqual(expected(a));
    m.checkAccounting();
  });

  it('a lower tier that needs room drops clean copies first, and the flight stays whole above', async () => {
    const { m, settledFiles, read, promoted } = await setup();
    const a = frames(1);
    await promoted('a', a);
    // Two flights that fit disk_mapped only without a's clean copy (24 KB + 2 × 36 KB > 80 KiB).
    const big = (seed: number) => Array.from({ length: 9 }, (_, i) => frame(seed * 100 + i, 4000));
    for (const [p, seed] of [
      ['x', 4],
      ['y', 5],
    ] as const) {
      await putFlight(m, `tier/${p}`, big(seed), 36_000);
    }
    await m.idle();
    m.checkAccounting();
    expect(m.stats().storageTypes.disk_mapped?.clean).toBe(0);
    expect(m.lookup(flightPath(['a'])).storage).toBe('memory');
    expect(await read('a')).toEqual(expected(a));
    expect(m.lookup(flightPath(['tier', 'x'])).storage).toBe('disk_mapped');
    expect(await settledFiles(2)).toHaveLength(2);
  });

  it('deleting or replacing a promoted flight frees both copies', async () => {
    const { m, mappedEmpty, read, promoted } = await setup();
    await promoted('a', frames(1));
    expect(m.delete(flightPath(['a']))).toBe(true);
    await mappedEmpty();
    expect(m.stats().storageTypes.memory?.used).toBe(0);

    await promoted('b', frames(2));
    const replacement = frames(9);
    await putFlight(m, 'b', replacement);
    await mappedEmpty();
    expect(await read('b')).toEqual(expected(replacement));
    m.checkAccounting();
  });

  it('a reload (tiers may have changed) frees clean copies; the flight stays where it is', async () => {
    const { m, mappedEmpty, read, promoted } = await setup();
    const a = frames(1);
    await promoted('a', a);
    m.reconfigure(parseConfigText(CONFIG.replaceAll('$DIR', t!.dir), 'test.yaml'));
    await mappedEmpty();
    expect(m.lookup(flightPath(['a'])).storage).toBe('memory');
    expect(await read('a')).toEqual(expected(a));
    m.checkAccounting();
  });

  it('a clean copy whose file is gone is dropped, and the flight is written down again', async () => {
    const { m, files, read, promoted, clock } = await setup();
    const a = frames(1);
    await promoted('a', a);
    const [gone] = await files();
    await rm(path.join(t!.dir, 'mapped', gone!));
    clock.advance(11 * 60_000);
    await m.tick();
    await m.idle();
    expect(m.lookup(flightPath(['a'])).storage).toBe('disk_mapped');
    const now = await files();
    expect(now).toHaveLength(1);
    expect(now[0]).not.toBe(gone);
    expect(await read('a')).toEqual(expected(a));
    expect(m.stats().storageTypes.disk_mapped).toMatchObject({ flights: 1, clean: 0 });
    m.checkAccounting();
  });
});
