import { flightPath } from '../../src/core/path.js';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfigText } from '../../src/config/load.js';
import { ManualClock } from '../../src/core/clock.js';
import { createManager, frame, putFlight, type TestManager } from '../helpers/manager.js';

/** `pin` (DESIGN §6): a pinned flight is never evicted or moved down, and still counts against limits. */
const CONFIG = (limit = '') => `storageTypes:
  memory: { capacity: 1MiB }
  disk: { path: $DIR/disk, capacity: 64MiB }
storageClasses:
  - name: default
    prefix: ""
    tiers:
      - { storage: memory, moveAfter: 1m }
      - { storage: disk }
${limit}`;

describe('pinned flights', () => {
  let tm: TestManager | undefined;
  afterEach(async () => {
    await tm?.cleanup();
    tm = undefined;
  });

  it('are never evicted under memory pressure, nor moved down; a put that needs their room is refused', async () => {
    const clock = new ManualClock(0);
    tm = await createManager(CONFIG(), clock);
    const m = tm.manager;
    await putFlight(m, 'keep', [frame(1, 400 * 1024)]);
    m.pin(flightPath(['keep']));
    for (let i = 0; i < 6; i++) await putFlight(m, `churn/${i}`, [frame(10 + i, 300 * 1024)]);
    expect(m.lookup(flightPath(['keep'])).storage).toBe('memory');
    expect(m.list('churn').length).toBeLessThan(6); // the others were evicted (no spill configured)
    // moveAfter moves the idle ones down, never the pinned one.
    clock.advance(120_000);
    await putFlight(m, 'fresh', [frame(30, 100 * 1024)]);
    await m.tick();
    expect(m.lookup(flightPath(['keep'])).storage).toBe('memory');
    // More than the room the pinned flight leaves: refused rather than evicting it.
    await expect(putFlight(m, 'huge', [frame(40, 700 * 1024)])).rejects.toThrow(/memory is full/);
    expect(m.lookup(flightPath(['keep'])).storage).toBe('memory');
    expect(m.stats().pinned).toBe(1);
    // Unpinned, it is an eviction candidate again.
    expect(m.unpin(flightPath(['keep']))).toBe(true);
    expect(m.unpin(flightPath(['keep']))).toBe(false);
    await putFlight(m, 'huge', [frame(40, 700 * 1024)]);
    expect(() => m.lookup(flightPath(['keep']))).toThrow(/not found/);
    m.checkAccounting();
  });

  it('keep their pin when replaced and across a reload; a put that needs a pinned flight’s limit room is refused', async () => {
    const clock = new ManualClock(0);
    const limit = `limitPolicies:
  - { name: all, type: standard, classes: [default], limit: 900KiB, onLimit: evict }
`;
    tm = await createManager(CONFIG(limit), clock);
    const m = tm.manager;
    await putFlight(m, 'keep', [frame(1, 500 * 1024)]);
    m.pin(flightPath(['keep']));
    await putFlight(m, 'keep', [frame(2, 500 * 1024)]); // a new version of a pinned path is pinned
    expect(m.lookup(flightPath(['keep'])).pinned).toBe(true);
    const config = parseConfigText(CONFIG(limit).replaceAll('$DIR', tm.dir), 'test.yaml');
    m.reconfigure(config);
    expect(m.lookup(flightPath(['keep'])).pinned).toBe(true);
    await expect(putFlight(m, 'other', [frame(3, 500 * 1024)])).rejects.toThrow(/limit/);
    expect(m.lookup(flightPath(['keep'])).pinned).toBe(true);
    m.limits.check();
    // Deleting the flight drops its pin: a new put of the path is not pinned.
    m.delete(flightPath(['keep']));
    await putFlight(m, 'keep', [frame(4, 100 * 1024)]);
    expect(m.lookup(flightPath(['keep'])).pinned).toBe(false);
    expect(() => m.pin(flightPath(['missing']))).toThrow(/not found/);
  });
});
