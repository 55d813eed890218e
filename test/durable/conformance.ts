import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DurableStoreError, type DurableStore } from '../../src/durable/durable-store.js';

/**
 * The durable store conformance suite: every implementation of `DurableStore` runs it
 * (see filesystem-store.test.ts and s3-store.test.ts). A new implementation proves
 * itself by passing it unchanged.
 */
export interface StoreFixture {
  store: DurableStore;
  /** Unfinished uploads the store keeps (S3 multipart uploads), when it has such a notion. */
  pendingUploads?: () => Promise<number>;
  cleanup: () => Promise<void>;
}

const MIB = 1024 * 1024;

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

function pattern(bytes: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(bytes);
  let x = seed >>> 0 || 1;
  for (let i = 0; i + 4 <= bytes; i += 4) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    b.writeUInt32LE(x, i);
  }
  b.fill(7, bytes - (bytes % 4));
  return b;
}

async function* chunks(data: Buffer, size = MIB, failAfter?: number): AsyncGenerator<Buffer> {
  for (let at = 0; at < data.length; at += size) {
    if (failAfter !== undefined && at >= failAfter) throw new Error('the body failed mid-stream');
    yield data.subarray(at, Math.min(data.length, at + size));
  }
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

async function kindOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'resolved';
  } catch (err) {
    return err instanceof DurableStoreError ? err.kind : `other: ${(err as Error).message}`;
  }
}

async function keys(store: DurableStore, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const o of store.list(prefix)) out.push(o.key);
  return out;
}

export function durableStoreConformance(name: string, setup: () => Promise<StoreFixture>): void {
  describe(`durable store conformance: ${name}`, () => {
    let f: StoreFixture;
    beforeAll(async () => {
      f = await setup();
    });
    afterAll(async () => {
      f.store.close();
      await f.cleanup();
    });

    it('puts and gets a small object, and reports its size', async () => {
      const data = Buffer.from('hello, durable world');
      const put = await f.store.put('c/small', chunks(data));
      expect(put).toMatchObject({ key: 'c/small', size: data.length });
      expect(await f.store.head('c/small')).toMatchObject({ key: 'c/small', size: data.length, version: put.version });
      expect(await readAll(await f.store.get('c/small'))).toEqual(data);
    });

    it('streams a multi-part object in and out intact', async () => {
      const data = pattern(12 * MIB + 123, 1);
      await f.store.put('c/large/object', chunks(data, 3 * MIB + 1));
      expect((await f.store.head('c/large/object'))?.size).toBe(data.length);
      expect(sha(await readAll(await f.store.get('c/large/object')))).toBe(sha(data));
    });

    it('reads byte ranges', async () => {
      const data = pattern(100_000, 2);
      await f.store.put('c/range', chunks(data, 7_000));
      expect(await readAll(await f.store.get('c/range', { start: 0, end: 10 }))).toEqual(data.subarray(0, 10));
      expect(await readAll(await f.store.get('c/range', { start: 99_990 }))).toEqual(data.subarray(99_990));
      expect(await readAll(await f.store.get('c/range', { start: 4096, end: 70_001 }))).toEqual(
        data.subarray(4096, 70_001),
      );
    });

    it('tells a missing object apart: head undefined, get not_found, delete fine', async () => {
      expect(await f.store.head('c/missing')).toBeUndefined();
      expect(await kindOf(f.store.get('c/missing'))).toBe('not_found');
      await f.store.delete('c/missing');
      await f.store.put('c/gone', chunks(Buffer.from('x')));
      await f.store.delete('c/gone');
      expect(await f.store.head('c/gone')).toBeUndefined();
    });

    it('replaces an object atomically on overwrite', async () => {
      await f.store.put('c/over', chunks(Buffer.from('first version')));
      await f.store.put('c/over', chunks(Buffer.from('second')));
      expect((await readAll(await f.store.get('c/over'))).toString()).toBe('second');
    });

    it('gives each object a version (and time) that a listing repeats and a replace changes', async () => {
      const first = await f.store.put('v/obj', chunks(Buffer.from('one version')));
      const listed = async () => {
        for await (const o of f.store.list('v/')) return o;
        return undefined;
      };
      expect(first.version).toBeDefined();
      expect(await listed()).toMatchObject({ key: 'v/obj', size: 11, version: first.version });
      expect((await listed())?.modifiedAt).toBeGreaterThan(Date.now() - 60_000);
      expect((await f.store.head('v/obj'))?.version).toBe(first.version);
      await new Promise((r) => setTimeout(r, 5));
      const second = await f.store.put('v/obj', chunks(Buffer.from('another one')));
      expect(second.version).not.toBe(first.version);
      expect((await listed())?.version).toBe(second.version);
    });

    it('lists by plain string prefix, in key order', async () => {
      for (const k of ['l/a/b/2', 'l/a/b/1', 'l/a/bc/3', 'l/a/x', 'l/z']) await f.store.put(k, chunks(Buffer.from(k)));
      expect(await keys(f.store, 'l/a/b/')).toEqual(['l/a/b/1', 'l/a/b/2']);
      expect(await keys(f.store, 'l/a/b')).toEqual(['l/a/b/1', 'l/a/b/2', 'l/a/bc/3']);
      expect(await keys(f.store, 'l/')).toEqual(['l/a/b/1', 'l/a/b/2', 'l/a/bc/3', 'l/a/x', 'l/z']);
      expect(await keys(f.store, 'nothing/here/')).toEqual([]);
    });

    it('leaves nothing behind when the body fails mid-stream', async () => {
      const data = pattern(12 * MIB, 3);
      await expect(f.store.put('c/failed', chunks(data, MIB, 7 * MIB))).rejects.toThrow(/failed mid-stream/);
      expect(await f.store.head('c/failed')).toBeUndefined();
      expect(await keys(f.store, 'c/failed')).toEqual([]);
      if (f.pendingUploads) expect(await f.pendingUploads()).toBe(0);
    });

    it('leaves nothing behind when the put is aborted, and keeps the previous object', async () => {
      await f.store.put('c/aborted', chunks(Buffer.from('previous')));
      const controller = new AbortController();
      const body = async function* (): AsyncGenerator<Buffer> {
        for (let i = 0; i < 16; i++) {
          if (i === 8) controller.abort(new Error('client went away'));
          yield pattern(MIB, i);
          await new Promise((r) => setTimeout(r, 5));
        }
      };
      expect(await kindOf(f.store.put('c/aborted', body(), { signal: controller.signal }))).not.toBe('resolved');
      expect((await readAll(await f.store.get('c/aborted'))).toString()).toBe('previous');
      expect(await keys(f.store, 'c/aborted')).toEqual(['c/aborted']);
      if (f.pendingUploads) expect(await f.pendingUploads()).toBe(0);
    });

    it('refuses keys that could escape its root', async () => {
      for (const key of ['../escape', '/abs', 'a//b', 'a/./b', 'a/../../b', '']) {
        expect({ key, kind: await kindOf(f.store.put(key, chunks(Buffer.from('x')))) }).toEqual({
          key,
          kind: 'permanent',
        });
      }
    });
  });
}
