import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { BufferPool, sizeClass } from '../../src/core/buffer-pool.js';

const MIB = 1024 * 1024;

describe('BufferPool', () => {
  it('rounds sizes up to classes at most 1/8 larger', () => {
    for (const size of [65_536, 100_000, 4 * MIB, 4 * MIB + 300, 7 * MIB + 1, 33 * MIB]) {
      const c = sizeClass(size);
      expect(c).toBeGreaterThanOrEqual(size);
      expect(c / size).toBeLessThanOrEqual(1.125);
    }
    expect(sizeClass(4 * MIB + 300)).toBe(sizeClass(4 * MIB + 9000)); // neighbours share a class
  });

  it('lends buffers of the exact size and reuses what comes back', () => {
    const pool = new BufferPool(64 * MIB);
    const a = pool.acquire(4 * MIB + 300);
    expect(a.length).toBe(4 * MIB + 300);
    pool.release(a);
    expect(pool.idle).toBe(sizeClass(4 * MIB + 300));
    const b = pool.acquire(4 * MIB + 9000);
    expect(b.buffer).toBe(a.buffer);
    expect(pool.idle).toBe(0);
    expect(pool.acquire(4 * MIB).buffer).not.toBe(a.buffer); // b still lent
  });

  it('takes back only what it lent, once; small sizes are not pooled', () => {
    const pool = new BufferPool(64 * MIB);
    pool.release(Buffer.alloc(MIB)); // a stored buffer, never lent
    expect(pool.idle).toBe(0);
    const a = pool.acquire(MIB);
    pool.release(a);
    pool.release(a);
    expect(pool.idle).toBe(MIB);
    const small = pool.acquire(1000);
    pool.release(small);
    expect(pool.idle).toBe(MIB);
  });

  it('keeps at most maxIdleBytes and drops them after a quiet spell on its clock', async () => {
    const clock = new ManualClock(0);
    const pool = new BufferPool(2 * MIB, 64 * 1024, 1000, clock);
    const lent = [pool.acquire(MIB), pool.acquire(MIB), pool.acquire(MIB)];
    for (const b of lent) pool.release(b);
    expect(pool.idle).toBe(2 * MIB);
    clock.advance(600);
    pool.release(pool.acquire(MIB)); // used again: the quiet spell starts over
    clock.advance(600);
    await new Promise((r) => setTimeout(r, 0));
    expect(pool.idle).toBe(2 * MIB);
    clock.advance(500);
    await new Promise((r) => setTimeout(r, 0));
    expect(pool.idle).toBe(0);
  });
});
