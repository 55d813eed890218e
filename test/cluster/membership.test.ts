import { describe, expect, it } from 'vitest';
import { Membership, MISSES_TO_DOWN, type Member } from '../../src/cluster/membership.js';
import { clusterSchema } from '../../src/config/schema.js';
import { ManualClock } from '../../src/core/clock.js';
import { silentLogger } from '../../src/core/log.js';

/** Lets the probes' promises settle (fake time never passes by itself). */
const settle = () => new Promise((r) => setTimeout(r, 0));

/**
 * Membership on fake time: probes run every `probeEvery` of the injected clock, so a test
 * drives them without waiting (the timers are the clock's, not setInterval).
 */
describe('cluster membership on the clock', () => {
  it('marks a member down after three missed probes and up at the next answer, only as the clock moves', async () => {
    const clock = new ManualClock(0);
    const config = clusterSchema.parse({
      self: 'a',
      members: [
        { name: 'a', location: 'grpc://127.0.0.1:9001' },
        { name: 'b', location: 'grpc://127.0.0.1:9002' },
      ],
      probeEvery: '1s',
    });
    let answering = true;
    let probes = 0;
    const probe = (_m: Member) => {
      probes++;
      return answering ? Promise.resolve() : Promise.reject(new Error('no answer'));
    };
    const membership = new Membership(config, 'grpc+tcp', probe, clock, silentLogger);
    await membership.start(); // the first round
    expect(membership.get('b')?.state).toBe('up');
    expect(probes).toBe(1);
    await settle();
    expect(probes).toBe(1); // no real time drives it

    answering = false;
    for (let i = 0; i < MISSES_TO_DOWN - 1; i++) {
      clock.advance(1_000);
      await settle();
    }
    expect(membership.get('b')?.state).toBe('up'); // two misses
    clock.advance(1_000);
    await settle();
    expect(membership.get('b')?.state).toBe('down');
    expect(probes).toBe(1 + MISSES_TO_DOWN);

    answering = true;
    clock.advance(1_000);
    await settle();
    expect(membership.get('b')?.state).toBe('up');

    membership.stop();
    clock.advance(10_000);
    await settle();
    expect(probes).toBe(2 + MISSES_TO_DOWN);
  });
});
