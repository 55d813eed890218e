import { flightPath } from '../../src/core/path.js';
import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../../src/config/load.js';
import type { Frame } from '../../src/storage/storage-type.js';
import { StorageManager } from '../../src/storage/manager.js';
import { ManualClock } from '../../src/core/clock.js';

const config = (capacity: number, extraClass = '') =>
  parseConfigText(
    `storageTypes: { memory: { capacity: ${capacity} } }
storageClasses:
  - { name: root, prefix: "", tiers: [{ storage: memory }] }
  - { name: short, prefix: tmp, ttl: 10s, tiers: [{ storage: memory, maxFlightSize: 500 }] }
${extraClass}`,
    'test.yaml',
  );

const batch = (bytes: number, rows = 1): Frame => ({
  kind: 'batch',
  header: Buffer.alloc(8),
  body: Buffer.alloc(bytes - 8),
  appMetadata: Buffer.alloc(0),
  rows,
});

async function put(m: StorageManager, path: string, batchBytes: number[], schemaBytes = 16) {
  const s = await m.beginPut(flightPath([path]));
  try {
    await s.setSchema(Buffer.alloc(schemaBytes));
    for (const b of batchBytes) await s.append(batch(b));
    return await s.commit();
  } catch (err) {
    await s.abort();
    throw err;
  }
}

describe('StorageManager accounting', async () => {
  it('charges exactly what a flight holds and returns it on delete', async () => {
    const m = new StorageManager({ config: config(10_000), clock: new ManualClock() });
    const v = await put(m, 'a', [100, 200]);
    expect(v.heldBytes).toBe(316);
    expect(v.totalRecords).toBe(2);
    expect(m.stats().storageTypes.memory?.used).toBe(316);
    m.checkAccounting();
    expect(m.delete(flightPath(['a']))).toBe(true);
    expect(m.delete(flightPath(['a']))).toBe(false);
    expect(m.stats().storageTypes.memory?.used).toBe(0);
  });

  it('makes nothing visible before commit and frees everything on abort', async () => {
    const m = new StorageManager({ config: config(10_000), clock: new ManualClock() });
    const s = await m.beginPut(flightPath(['a']));
    await s.setSchema(Buffer.alloc(16));
    await s.append(batch(1000));
    expect(() => m.lookup(flightPath(['a']))).toThrow(/not found/);
    expect(m.stats().storageTypes.memory?.reserved).toBe(1016);
    await s.abort();
    await s.abort();
    expect(m.stats().storageTypes.memory?.used).toBe(0);
    expect(m.stats().putsInProgress).toBe(0);
  });

  it('reserves a size hint up front and returns the unused part at commit', async () => {
    const m = new StorageManager({ config: config(10_000), clock: new ManualClock() });
    const s = await m.beginPut(flightPath(['a']), { sizeHint: 5000 });
    expect(m.stats().storageTypes.memory?.used).toBe(5000);
    await s.setSchema(Buffer.alloc(16));
    await s.append(batch(84));
    await s.commit();
    expect(m.stats().storageTypes.memory?.used).toBe(100);
    m.checkAccounting();
  });

  it('replaces atomically while old readers keep their version', async () => {
    const m = new StorageManager({ config: config(10_000), clock: new ManualClock() });
    await put(m, 'a', [100]);
    const lease = await m.open(flightPath(['a']));
    await put(m, 'a', [300]);
    expect(m.lookup(flightPath(['a'])).heldBytes).toBe(316);
    expect(lease.version.heldBytes).toBe(116);
    expect(lease.version.retired).toBe('replace');
    expect(m.stats().storageTypes.memory).toMatchObject({ used: 432, pinnedRetired: 116 });
    m.checkAccounting();
    lease.release();
    lease.release(); // idempotent
    expect(m.stats().storageTypes.memory).toMatchObject({ used: 316, pinnedRetired: 0 });
  });

  it('evicts least recently used flights, skipping pinned ones, never exceeding capacity', async () => {
    const m = new StorageManager({ config: config(1000), clock: new ManualClock() });
    await put(m, 'a', [284]); // 300 each
    await put(m, 'b', [284]);
    await put(m, 'c', [284]);
    (await m.open(flightPath(['a']))).release(); // a is now the most recent
    const pinned = await m.open(flightPath(['b'])); // b is pinned
    await put(m, 'd', [284]); // needs 300: c is the LRU unpinned
    expect(m.list().map((v) => v.path)).toEqual(['a', 'b', 'd']);
    pinned.release();
    await put(m, 'e', [584]); // needs 600: evicts b then a
    expect(m.list().map((v) => v.path)).toEqual(['d', 'e']);
    expect(m.stats().storageTypes.memory?.used).toBe(900);
    m.checkAccounting();
  });

  it('fails with RESOURCE_EXHAUSTED when readers hold what would be evicted', async () => {
    const m = new StorageManager({ config: config(1000), clock: new ManualClock() });
    await put(m, 'a', [584]);
    const lease = await m.open(flightPath(['a']));
    await expect(put(m, 'b', [584])).rejects.toThrow(/flight "b": memory is full/);
    expect(m.stats().putsInProgress).toBe(0);
    m.checkAccounting();
    lease.release();
  });

  it('rejects a flight over its tier maxFlightSize naming the rule', async () => {
    const m = new StorageManager({ config: config(10_000), clock: new ManualClock() });
    const s = await m.beginPut(flightPath(['tmp/x']));
    await s.setSchema(Buffer.alloc(16));
    await expect(s.append(batch(600))).rejects.toThrow(
      /exceeds maxFlightSize 500B in tier 0 \(memory\) of class "short", and uploadSpill is "reject"/,
    );
    await s.abort();
    await expect(m.beginPut(flightPath(['tmp/x']), { sizeHint: 501 })).rejects.toThrow(
      /declared size 501B fits no tier/,
    );
    expect(m.stats().storageTypes.memory?.used).toBe(0);
  });

  it('never serves an expired flight, even before the sweeper runs', async () => {
    const clock = new ManualClock(1_000_000);
    const m = new StorageManager({ config: config(10_000), clock });
    const v = await put(m, 'tmp/x', [100]);
    expect(v.expiresAt).toBe(1_010_000);
    clock.advance(9_999);
    expect(m.lookup(flightPath(['tmp/x'])).path).toBe('tmp/x');
    clock.advance(1);
    expect(m.list('tmp')).toEqual([]);
    expect(() => m.lookup(flightPath(['tmp/x']))).toThrow(/expired|not found/);
    expect(m.stats().storageTypes.memory?.used).toBe(0);
    await put(m, 'tmp/y', [100]);
    clock.advance(10_000);
    expect(m.sweepExpired()).toBe(1);
    expect(m.stats().storageTypes.memory?.used).toBe(0);
  });

  it('lists and deletes by whole-segment prefix', async () => {
    const m = new StorageManager({ config: config(10_000), clock: new ManualClock() });
    for (const p of ['cache/raw/1', 'cache/raw/2', 'cache/rawdata', 'other']) await put(m, p, [8]);
    expect(m.list('cache/raw').map((v) => v.path)).toEqual(['cache/raw/1', 'cache/raw/2']);
    expect(m.list('cache/raw/').length).toBe(2);
    expect(m.deletePrefix('cache/raw')).toBe(2);
    expect(m.list().map((v) => v.path)).toEqual(['cache/rawdata', 'other']);
    expect(() => m.list('a//b')).toThrow(/empty path segment/);
  });

  it('keeps the invariant through a seeded random workload', async () => {
    let seed = 42;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const clock = new ManualClock();
    const m = new StorageManager({ config: config(20_000), clock });
    const leases: Awaited<ReturnType<StorageManager['open']>>[] = [];
    for (let step = 0; step < 5000; step++) {
      const path = `p${rand(30)}`;
      const op = rand(10);
      try {
        if (op < 4) {
          const s = await m.beginPut(flightPath([path]));
          await s.setSchema(Buffer.alloc(16));
          const n = rand(4);
          try {
            for (let i = 0; i < n; i++) await s.append(batch(8 + rand(3000)));
            if (rand(5) === 0) await s.abort();
            else await s.commit();
          } catch (err) {
            await s.abort();
            throw err;
          }
        } else if (op < 6) leases.push(await m.open(flightPath([path])));
        else if (op < 8 && leases.length > 0) leases.splice(rand(leases.length), 1)[0]?.release();
        else if (op < 9) m.delete(flightPath([path]));
        else clock.advance(rand(5000));
      } catch (err) {
        expect((err as Error).message).toMatch(/not found|memory is full|exceeds/);
      }
      m.checkAccounting();
    }
    for (const l of leases) l.release();
    for (const v of m.list()) m.delete(v.path);
    expect(m.stats().storageTypes.memory).toMatchObject({ used: 0, pinnedRetired: 0, reserved: 0 });
  });
});

describe('StorageManager listing', () => {
  it('walks a prefix a page at a time, in path order, whole segments only, as the catalog is when each page is read', async () => {
    const clock = new ManualClock();
    const m = new StorageManager({ config: config(10_000_000), clock });
    const under = Array.from({ length: 600 }, (_, i) => `a/${String(i).padStart(4, '0')}`);
    for (const path of ['a', ...under, 'a-b/x', 'a.c', 'ab/1', 'b/1']) await put(m, path, [64]);
    await put(m, 'tmp/gone', [64]); // expires before its page is read
    const seen: string[] = [];
    for await (const v of m.listing('a')) {
      seen.push(v.path);
      // Changes between pages show in later pages: a removed flight is not listed.
      if (seen.length === 10) m.delete(flightPath(['a/0300']));
    }
    expect(seen).toEqual(['a', ...under.filter((p) => p !== 'a/0300')]);
    clock.advance(11_000);
    const all: string[] = [];
    for await (const v of m.listing('')) all.push(v.path);
    expect(all).toHaveLength(1 + 599 + 4);
    expect(all).not.toContain('tmp/gone');
    expect(m.has(flightPath(['tmp/gone']))).toBe(false);
    m.checkAccounting();
  });
});
