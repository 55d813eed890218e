import { flightPath } from '../../src/core/path.js';
import { mkdtemp, rm, utimes } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseConfigText } from '../../src/config/load.js';
import { ManualClock } from '../../src/core/clock.js';
import type { ByteRange, DurableStore, ObjectInfo, PutOptions } from '../../src/durable/durable-store.js';
import { FilesystemStore } from '../../src/durable/filesystem-store.js';
import { StorageManager } from '../../src/storage/manager.js';
import { expected, frame, putFlight, readLease } from '../helpers/manager.js';

/**
 * A restart is ready once the durable stores are listed: every listed object becomes an
 * unread flight, its manifest read on first use (one read for concurrent callers) or by the
 * background fill. Deletes, expiry and handover work from the listings, never reading an
 * object they do not need. The store here counts what it is asked.
 */
class CountingStore implements DurableStore {
  reads = 0;
  lists = 0;
  /** Reads by key. */
  readonly readsOf = new Map<string, number>();
  /** Each read waits for this first (a slow store). */
  gate: Promise<void> = Promise.resolve();
  /** A listing yields this many objects, then waits for `listGate` (a store too large to list at once). */
  listFirst = Number.POSITIVE_INFINITY;
  listGate: Promise<void> = Promise.resolve();

  constructor(private readonly inner: DurableStore) {}

  /** Holds every read until the returned function is called. */
  hold(): () => void {
    let open!: () => void;
    this.gate = new Promise((r) => (open = r));
    return open;
  }

  get id(): string {
    return this.inner.id;
  }
  put(key: string, body: AsyncIterable<Buffer>, options?: PutOptions): Promise<ObjectInfo> {
    return this.inner.put(key, body, options);
  }
  async get(key: string, range?: ByteRange, signal?: AbortSignal): Promise<Readable> {
    this.reads++;
    this.readsOf.set(key, (this.readsOf.get(key) ?? 0) + 1);
    await this.gate;
    return this.inner.get(key, range, signal);
  }
  head(key: string): Promise<ObjectInfo | undefined> {
    this.reads++;
    return this.inner.head(key);
  }
  /** Each delete waits for this first (removals still on their way). */
  deleteGate: Promise<void> = Promise.resolve();
  async delete(key: string): Promise<void> {
    await this.deleteGate;
    return this.inner.delete(key);
  }
  /** Holds every listing of the whole store after its first `n` objects until the returned function is called. */
  holdListing(n: number): () => void {
    let open!: () => void;
    this.listFirst = n;
    this.listGate = new Promise((r) => (open = r));
    return open;
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    this.lists++;
    let n = 0;
    for await (const info of this.inner.list(prefix)) {
      if (prefix === 'tf/' && n++ === this.listFirst) await this.listGate;
      yield info;
    }
  }
  close(): void {}
}

const CONFIG = (dir: string, concurrency = 16) => `server: { recoveryConcurrency: ${concurrency} }
storageTypes:
  memory: { capacity: 64MiB }
durableStores:
  - { id: local, type: filesystem, path: ${dir}/store }
storageClasses:
  - { name: kept, prefix: "", durability: strong, durableStore: local, durablePrefix: tf/, ttl: 1h, tiers: [{ storage: memory }] }
`;

let dir: string;
let store: CountingStore;
const managers: StorageManager[] = [];

async function start(clock: ManualClock, concurrency?: number, listWaitMs?: number): Promise<StorageManager> {
  const config = parseConfigText(CONFIG(dir, concurrency), 'lazy.yaml');
  const m = new StorageManager({
    config,
    clock,
    durableStores: new Map([['local', store as DurableStore]]),
    ...(listWaitMs !== undefined ? { listWaitMs } : {}),
  });
  await m.init();
  managers.push(m);
  return m;
}

const data = (i: number) => [frame(i * 10, 3000), frame(i * 10 + 1, 2000)];

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tierflight-lazy-'));
  store = new CountingStore(new FilesystemStore('local', path.join(dir, 'store')));
});
afterEach(async () => {
  for (const m of managers.splice(0)) await m.close(0);
  await rm(dir, { recursive: true, force: true });
});

describe('a restart from listings', () => {
  it('is ready after listing: no object is read before a flight is asked for; one read serves concurrent callers', async () => {
    const clock = new ManualClock(Date.now());
    const first = await start(clock);
    for (let i = 0; i < 40; i++) await putFlight(first, `t/${i}`, data(i));
    await first.close(0);
    store.reads = 0;
    const open = store.hold(); // nothing is read until the test says so
    const m = await start(clock);
    expect(store.reads).toBeLessThanOrEqual(16); // the background fill's first reads, waiting
    expect(m.has(flightPath(['t/7']))).toBe(true);
    expect(m.stats().classes.kept).toMatchObject({ flights: 40, durableOnly: 40 });
    const [a, b] = [m.open(flightPath(['t/7'])), m.open(flightPath(['t/7']))];
    await new Promise((r) => setTimeout(r, 20));
    open();
    const leases = await Promise.all([a, b]);
    expect(await readLease(leases[0]!)).toEqual(expected(data(7)));
    for (const l of leases) l.release();
    // t/7's manifest (one ranged read, shared by the two callers and the fill), then its data once to restore it.
    expect(store.readsOf.get('tf/t/7')).toBeLessThanOrEqual(2);
    await m.manifestsRead();
    expect(m.list('t').map((v) => v.unread)).toEqual(Array.from({ length: 40 }, () => false));
    m.checkAccounting();
  });

  it('never serves a flight that expired before it was read, and removes it unread when its listing proves it', async () => {
    // 'old' was put two hours ago (by the server's clock) with a 1 h TTL, its object written
    // just now: only its manifest says it expired. 'older''s object is two hours old by the
    // store's clock: its listing alone says so.
    const first = await start(new ManualClock(Date.now() - 2 * 3600_000));
    await putFlight(first, 'old', data(1));
    await putFlight(first, 'older', data(2));
    await first.close(0);
    const twoHoursAgo = new Date(Date.now() - 2 * 3600_000);
    await utimes(path.join(dir, 'store', 'tf', 'older'), twoHoursAgo, twoHoursAgo);
    store.readsOf.clear();
    const open = store.hold();
    const m = await start(new ManualClock(Date.now()), 1);
    expect(m.has(flightPath(['older']))).toBe(false);
    expect(m.has(flightPath(['old']))).toBe(true); // not known to be expired until read
    open();
    await expect(m.open(flightPath(['old']))).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(m.has(flightPath(['old']))).toBe(false);
    expect(store.readsOf.get('tf/older')).toBeUndefined();
    await new Promise((r) => setTimeout(r, 50)); // removals go in the background
    const left: string[] = [];
    for await (const o of store.list('tf/')) left.push(o.key);
    expect(left).toEqual([]);
  });

  it('a delete during the background fill removes flights for good, without reading them', async () => {
    const clock = new ManualClock(1_000);
    const first = await start(clock);
    for (let i = 0; i < 30; i++) await putFlight(first, `d/${i % 3}/${i}`, data(i));
    await first.close(0);
    const open = store.hold();
    const m = await start(clock, 2);
    expect(m.deletePrefix('d/1')).toBe(10);
    expect(m.delete(flightPath(['d/0/0']))).toBe(true);
    open();
    await m.manifestsRead();
    expect(m.list('d').map((v) => v.path)).toEqual(
      Array.from({ length: 30 }, (_, i) => `d/${i % 3}/${i}`)
        .filter((p) => !p.startsWith('d/1/') && p !== 'd/0/0')
        .sort(),
    );
    await new Promise((r) => setTimeout(r, 50));
    const left: string[] = [];
    for await (const o of store.list('tf/d/')) left.push(o.key);
    expect(left).toHaveLength(19);
    m.checkAccounting();
  });

  it('serves while a large store is still listed: unlisted paths are looked up directly, deletes stay deleted', async () => {
    const clock = new ManualClock(Date.now());
    const first = await start(clock);
    for (let i = 0; i < 30; i++) await putFlight(first, `s/${i % 3}/${i}`, data(i));
    await first.close(0);
    // The listing gives 5 objects (in key order: s/0/0, s/0/12, s/0/15, ...), then stalls.
    const resume = store.holdListing(5);
    const started = Date.now();
    const m = await start(clock, 4, 300);
    expect(Date.now() - started).toBeLessThan(3_000); // ready after the wait, not the listing
    expect(m.degradedStores).toEqual([]); // it answers: listing, not down
    expect(m.stats().flights).toBe(5);
    // A flight the listing has not reached is found in the store and served.
    expect(m.has(flightPath(['s/2/29']))).toBe(false);
    const lease = await m.open(flightPath(['s/2/29']));
    expect(await readLease(lease)).toEqual(expected(data(29)));
    lease.release();
    // One not in the store at all is NOT_FOUND (its key names it: no listing needed).
    await expect(m.open(flightPath(['s/9/9']))).rejects.toMatchObject({ code: 'NOT_FOUND' });
    // A delete of an unlisted flight, and of an unlisted prefix: found first, removed for good
    // (even while their objects are still in the store, when the listing reaches them).
    let removeNow!: () => void;
    store.deleteGate = new Promise((r) => (removeNow = r));
    await m.locate(flightPath(['s/1/10']));
    expect(m.delete(flightPath(['s/1/10']))).toBe(true);
    await m.findUnder('s/2');
    expect(m.deletePrefix('s/2')).toBe(10);
    // A put meanwhile is newer than the object the listing will find.
    await putFlight(m, 's/1/13', data(99));
    const reads = store.hold();
    resume();
    await m.findUnder(''); // the whole listing is done
    expect(m.has(flightPath(['s/1/10']))).toBe(false);
    expect(m.has(flightPath(['s/2/20']))).toBe(false);
    removeNow();
    reads();
    await m.manifestsRead();
    const want = Array.from({ length: 30 }, (_, i) => `s/${i % 3}/${i}`)
      .filter((p) => !p.startsWith('s/2/') && p !== 's/1/10')
      .sort();
    expect(m.list('s').map((v) => v.path)).toEqual(want);
    const put = await m.open(flightPath(['s/1/13']));
    expect(await readLease(put)).toEqual(expected(data(99)));
    put.release();
    await new Promise((r) => setTimeout(r, 50)); // removals go in the background
    const left: string[] = [];
    for await (const o of store.list('tf/s/')) left.push(o.key.slice('tf/'.length));
    expect(left.sort()).toEqual(want);
    m.checkAccounting();
  });

  it('lists a prefix from a store still being listed before a ListFlights of it answers', async () => {
    const clock = new ManualClock(Date.now());
    const first = await start(clock);
    for (let i = 0; i < 12; i++) await putFlight(first, `p/${i % 2}/${i}`, data(i));
    await first.close(0);
    const resume = store.holdListing(2);
    const m = await start(clock, 4, 200);
    const listed = [];
    for await (const v of m.listing('p/1')) listed.push(v);
    expect(listed.map((v) => v.path)).toEqual(['p/1/1', 'p/1/11', 'p/1/3', 'p/1/5', 'p/1/7', 'p/1/9']);
    expect(listed.every((v) => !v.unread)).toBe(true);
    resume();
    await m.manifestsRead();
    expect(m.list('p')).toHaveLength(12);
    m.checkAccounting();
  });

  it('handover by listing: a newer version another node put is taken from the listing, read on first use', async () => {
    const clock = new ManualClock(Date.now());
    const a = await start(clock);
    await putFlight(a, 'h/x', data(1));
    await putFlight(a, 'h/y', data(2));
    // Another node (same store) puts a newer h/x a little later.
    clock.advance(5_000);
    const b = await start(clock);
    await new Promise((r) => setTimeout(r, 20));
    await putFlight(b, 'h/x', data(3));
    store.reads = 0;
    const lists = store.lists;
    expect(await a.refreshFromStores(() => true)).toBe(1);
    expect(store.reads).toBe(0);
    expect(store.lists).toBeGreaterThan(lists);
    const lease = await a.open(flightPath(['h/x']));
    expect(await readLease(lease)).toEqual(expected(data(3)));
    lease.release();
    // Nothing changed since: a second pass changes nothing.
    expect(await a.refreshFromStores(() => true)).toBe(0);
    a.checkAccounting();
  });
});
