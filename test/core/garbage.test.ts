import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { SERVE_NODE_FLAGS } from '../../src/cli/node-flags.js';
import { ROOT } from '../setup/python-env.js';

const CHILD = path.join(ROOT, 'test/helpers/garbage-child.ts');
const run = (flags: readonly string[]) =>
  JSON.parse(
    execFileSync(process.execPath, [...flags, '--import', 'tsx', CHILD], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 60_000,
    }),
  ) as {
    gc: boolean;
    afterKept: { requested: number; arrayBuffers: number };
    afterDropped: { requested: number; arrayBuffers: number };
    afterHeld: { requested: number; arrayBuffers: number };
    afterUncounted: { requested: number; arrayBuffers: number };
  };

/**
 * core/garbage.ts in a process started as the server is: kept buffers cost no collection,
 * dropped ones are collected once they pass the threshold; without the flags it does nothing.
 */
describe('collecting the buffers a server stops using', () => {
  it('asks for no GC while buffers are kept, one when they are dropped, and none again for what it cannot free', () => {
    const out = run(SERVE_NODE_FLAGS);
    expect(out.gc).toBe(true);
    // 384 MiB kept: live, so no collection was asked for (V8 alone would have run several).
    expect(out.afterKept.requested).toBe(0);
    expect(out.afterKept.arrayBuffers).toBeGreaterThanOrEqual(384);
    // Dropped: one collection, and V8 let the memory go.
    expect(out.afterDropped.requested).toBe(1);
    expect(out.afterDropped.arrayBuffers).toBeLessThan(100);
    // 256 MiB held uncounted, then 256 MiB more received: one collection found it live,
    // and no more were asked for (a collection per 64 MiB would have been eight).
    expect(out.afterHeld.requested).toBe(2);
    expect(out.afterHeld.arrayBuffers).toBeGreaterThanOrEqual(256);
    // 512 MiB held a moment and dropped, never counted (as a weak upload's reads): the
    // once-a-second look collects it, even after a collection that ran while it was live.
    expect(out.afterUncounted.requested).toBeGreaterThanOrEqual(3);
    expect(out.afterUncounted.requested).toBeLessThanOrEqual(5);
    expect(out.afterUncounted.arrayBuffers).toBeLessThan(300);
  });

  it('does nothing in a process started without the flags', () => {
    const out = run([]);
    expect(out.gc).toBe(false);
    expect(out.afterDropped.requested).toBe(0);
  });
});
