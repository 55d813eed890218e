import { describe, expect, it } from 'vitest';
import { MemoryReservationStore } from '../../src/coordination/memory-store.js';
import { Reservations } from '../../src/coordination/reservations.js';
import { reservationsSchema } from '../../src/config/schema.js';
import { ManualClock } from '../../src/core/clock.js';
import { silentLogger } from '../../src/core/log.js';

/**
 * The races between a wait starting and the flight landing or the reservation going,
 * with fake time (the expiry timer never fires unless the clock is advanced): a waiter is
 * never left waiting for an event that already happened.
 */
function setup(store: MemoryReservationStore, landed: () => boolean, clock = new ManualClock(1_000_000)) {
  const reservations = new Reservations(store, reservationsSchema.parse({}), clock, silentLogger, {
    has: landed,
    adopt: () => Promise.resolve(false),
  });
  return { clock, reservations };
}

/** A store whose reservation is released by its owner just after a waiter reads it. */
class ReleasedWhileReading extends MemoryReservationStore {
  override async get(key: string) {
    const r = await super.get(key);
    await super.delete(key);
    return r;
  }
}

describe('waiting for a reserved flight', () => {
  it('answers at once when the flight landed while the wait was starting', async () => {
    let landed = false;
    const store = new MemoryReservationStore(new ManualClock(1_000_000));
    const { reservations } = setup(store, () => landed);
    await reservations.reserve('p', 'owner', 30);
    const waiting = reservations.waitFor('p', 60_000);
    landed = true; // published before the waiter was registered: no event reaches it
    expect(await waiting).toBe('landed');
    expect(reservations.waiterCount).toBe(0);
  });

  it('answers at once when the reservation was released while the wait was starting', async () => {
    const store = new ReleasedWhileReading(new ManualClock(1_000_000));
    const { reservations } = setup(store, () => false);
    await reservations.reserve('p', 'owner', 30);
    expect(await reservations.waitFor('p', 60_000)).toBe('released');
    expect(reservations.waiterCount).toBe(0);
  });

  it('ends at the reservation’s expiry, not later, on the injected clock', async () => {
    const clock = new ManualClock(1_000_000);
    const { reservations } = setup(new MemoryReservationStore(clock), () => false, clock);
    await reservations.reserve('p', 'owner', 10); // expires in 30 s
    const waiting = reservations.waitFor('p', 3_600_000);
    await new Promise((r) => setTimeout(r, 10));
    clock.advance(29_999);
    await new Promise((r) => setTimeout(r, 10));
    expect(reservations.waiterCount).toBe(1);
    clock.advance(1);
    expect(await waiting).toBe('timeout');
  });
});
