import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { limit } from '../../src/core/limit.js';
import { retry } from '../../src/core/retry.js';
import { Timers } from '../../src/core/timers.js';

/** Lets promise callbacks run (fake time never passes by itself). */
const settle = () => new Promise((r) => setTimeout(r, 0));

describe('retry', () => {
  it('waits with backoff on the clock between attempts and returns the first success', async () => {
    const clock = new ManualClock(0);
    const delays: number[] = [];
    let calls = 0;
    const result = retry(
      async (attempt) => {
        calls++;
        if (attempt < 2) throw new Error(`fail ${attempt}`);
        return 'ok';
      },
      { clock, onRetry: (_err, _attempt, delayMs) => delays.push(delayMs) },
    );
    await settle();
    expect(calls).toBe(1); // the next attempt waits for the clock
    clock.advance(60_000);
    await settle();
    clock.advance(60_000);
    expect(await result).toBe('ok');
    expect(calls).toBe(3);
    expect(delays).toHaveLength(2);
    // Exponential from 250 ms with jitter between half and all of it.
    expect(delays[0]).toBeGreaterThanOrEqual(125);
    expect(delays[0]).toBeLessThanOrEqual(250);
    expect(delays[1]).toBeGreaterThanOrEqual(250);
    expect(delays[1]).toBeLessThanOrEqual(500);
  });

  it('throws the last error once attempts are spent or the failure is not retryable', async () => {
    const clock = new ManualClock(0);
    let calls = 0;
    const spent = retry(
      () => {
        calls++;
        return Promise.reject(new Error(`attempt ${calls}`));
      },
      { clock, attempts: 2 },
    );
    await settle();
    clock.advance(60_000);
    await expect(spent).rejects.toThrow('attempt 2');

    const fatal = retry(() => Promise.reject(new Error('fatal')), { clock, retryable: () => false });
    await expect(fatal).rejects.toThrow('fatal');
  });

  it('stops waiting when its signal aborts', async () => {
    const clock = new ManualClock(0);
    const stop = new AbortController();
    const run = retry(() => Promise.reject(new Error('down')), { clock, signal: stop.signal });
    await settle();
    stop.abort();
    await expect(run).rejects.toThrow('down');
  });
});

describe('limit', () => {
  it('runs at most n at once, the rest in order', async () => {
    const at = limit(2);
    let running = 0;
    let most = 0;
    const order: number[] = [];
    await Promise.all(
      [0, 1, 2, 3, 4].map((i) =>
        at(async () => {
          running++;
          most = Math.max(most, running);
          await settle();
          order.push(i);
          running--;
        }),
      ),
    );
    expect(most).toBe(2);
    expect(order).toEqual([0, 1, 2, 3, 4]);
  });
});

describe('timers on the clock', () => {
  it('every, after and debounce fire only when the clock reaches them, and stop ends them', async () => {
    const clock = new ManualClock(0);
    const timers = new Timers(clock);
    const fired: string[] = [];
    timers.every(1_000, () => fired.push('every'));
    timers.after(1_500, () => fired.push('after'));
    const cancelled = timers.after(1_500, () => fired.push('cancelled'));
    cancelled();
    const poke = timers.debounce(500, () => fired.push('debounced'));
    poke();
    clock.advance(400);
    await settle();
    poke(); // the burst goes on: it runs 500 ms after this one (t = 900), not at t = 500
    await settle();
    clock.advance(400); // t = 800
    await settle();
    expect(fired).toEqual([]);
    clock.advance(200); // t = 1000
    await settle();
    expect(fired.sort()).toEqual(['debounced', 'every']);
    clock.advance(500); // t = 1500
    await settle();
    expect(fired.sort()).toEqual(['after', 'debounced', 'every']);
    timers.stop();
    clock.advance(10_000);
    await settle();
    expect(fired).toHaveLength(3);
  });

  it('reports what a timer throws and keeps ticking', async () => {
    const clock = new ManualClock(0);
    const errors: unknown[] = [];
    const timers = new Timers(clock, (err) => errors.push(err));
    let ticks = 0;
    timers.every(100, () => {
      ticks++;
      return Promise.reject(new Error('tick failed'));
    });
    for (let i = 0; i < 3; i++) {
      clock.advance(100);
      await settle();
    }
    timers.stop();
    expect(ticks).toBe(3);
    expect(errors).toHaveLength(3);
  });
});
