import { flightPath } from '../../src/core/path.js';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { createManager, expected, frame, putFlight, readLease, type TestManager } from '../helpers/manager.js';

// server.ticketGrace: a version replaced after tickets were handed out for it stays readable
// through them until their expiration, first in eviction order; eviction under pressure,
// a delete or the end of the grace are what make an old ticket answer "was replaced".

const CONFIG = `server: { ticketGrace: 1m }
storageTypes:
  memory: { capacity: 64KiB }
storageClasses:
  - { name: short, prefix: short, ttl: 30s, tiers: [{ storage: memory }] }
  - { name: default, prefix: "", tiers: [{ storage: memory }] }
`;

let t: TestManager | undefined;
afterEach(async () => {
  await t?.cleanup();
  t = undefined;
});

const frames = (seed: number, n = 3, bytes = 4000) => Array.from({ length: n }, (_, i) => frame(seed * 100 + i, bytes));

describe('ticket lifetimes (server.ticketGrace)', () => {
  it('a replaced version reads whole through its ticket until the grace ends, then NOT_FOUND and its bytes go', async () => {
    const clock = new ManualClock(1_000_000);
    t = await createManager(CONFIG, clock);
    const m = t.manager;
    const v1 = frames(1);
    await putFlight(m, 'a', v1);
    const old = m.lookup(flightPath(['a']));
    expect(m.issueTickets(old)).toBe(1_000_000 + 60_000);
    await putFlight(m, 'a', frames(2));
    expect(m.stats().storageTypes.memory?.ticketGrace).toBe(old.heldBytes);
    clock.advance(59_000);
    const lease = await m.open(flightPath(['a']), old.tag);
    expect(await readLease(lease)).toEqual(expected(v1));
    lease.release();
    m.checkAccounting();
    clock.advance(1_000);
    expect(() => m.lookup(flightPath(['a']), old.tag)).toThrow(/was replaced after this ticket was issued/);
    await m.tick();
    expect(m.stats().storageTypes.memory?.ticketGrace).toBe(0);
    expect(m.stats().storageTypes.memory?.used).toBe(m.lookup(flightPath(['a'])).heldBytes);
    m.checkAccounting();
  });

  it('frees a replaced version at once when no ticket was handed out for it', async () => {
    const clock = new ManualClock(0);
    t = await createManager(CONFIG, clock);
    const m = t.manager;
    await putFlight(m, 'a', frames(3));
    const old = m.lookup(flightPath(['a']));
    await putFlight(m, 'a', frames(4));
    expect(() => m.lookup(flightPath(['a']), old.tag)).toThrow(/was replaced/);
    expect(m.stats().storageTypes.memory).toMatchObject({
      ticketGrace: 0,
      used: m.lookup(flightPath(['a'])).heldBytes,
    });
  });

  it('under pressure, ends a grace before evicting any visible flight', async () => {
    const clock = new ManualClock(0);
    t = await createManager(CONFIG, clock);
    const m = t.manager;
    await putFlight(m, 'keep', frames(5, 3, 6000)); // least recently used of the visible flights
    await putFlight(m, 'a', frames(6, 3, 6000));
    const old = m.lookup(flightPath(['a']));
    m.issueTickets(old);
    await putFlight(m, 'a', frames(7, 3, 6000));
    // 36 KiB of flights and 18 KiB kept for a ticket: the next put needs room.
    await putFlight(m, 'b', frames(8, 1, 14_000));
    expect(m.list().map((v) => v.path)).toEqual(['a', 'b', 'keep']);
    expect(() => m.lookup(flightPath(['a']), old.tag)).toThrow(/was replaced/);
    expect(m.stats().storageTypes.memory?.ticketGrace).toBe(0);
    m.checkAccounting();
  });

  it('renewing a ticket (RenewFlightEndpoint) keeps a replaced version readable longer', async () => {
    const clock = new ManualClock(0);
    t = await createManager(CONFIG, clock);
    const m = t.manager;
    const v1 = frames(9);
    await putFlight(m, 'a', v1);
    const old = m.lookup(flightPath(['a']));
    m.issueTickets(old);
    await putFlight(m, 'a', frames(10));
    clock.advance(50_000);
    expect(await m.renewTickets(flightPath(['a']), old.tag)).toMatchObject({ version: old, until: 110_000 });
    clock.advance(50_000); // past the first expiration, within the renewed one
    const lease = await m.open(flightPath(['a']), old.tag);
    expect(await readLease(lease)).toEqual(expected(v1));
    lease.release();
    clock.advance(10_000);
    await expect(m.renewTickets(flightPath(['a']), old.tag)).rejects.toThrow(/was replaced/);
  });

  it('a delete ends the graces of its path; an expiration never reaches past the flight TTL', async () => {
    const clock = new ManualClock(0);
    t = await createManager(CONFIG, clock);
    const m = t.manager;
    await putFlight(m, 'a', frames(11));
    const old = m.lookup(flightPath(['a']));
    m.issueTickets(old);
    await putFlight(m, 'a', frames(12));
    m.delete(flightPath(['a']));
    expect(() => m.lookup(flightPath(['a']), old.tag)).toThrow(/not found/);
    expect(m.stats().storageTypes.memory).toMatchObject({ ticketGrace: 0, used: 0 });
    await putFlight(m, 'short/x', frames(13));
    expect(m.issueTickets(m.lookup(flightPath(['short/x'])))).toBe(30_000);
    m.checkAccounting();
  });
});
