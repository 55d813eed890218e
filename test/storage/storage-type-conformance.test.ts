import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StorageTypeName } from '../../src/config/schema.js';
import { BufferPool } from '../../src/core/buffer-pool.js';
import type { Frame, StorageType } from '../../src/storage/storage-type.js';
import { createStorageTypes } from '../../src/storage/types/index.js';
import { ipcMessages, sampleMessages } from '../helpers/raw-client.js';
import { tableFromArrays, tableToIPC, vectorFromArray, Dictionary, Utf8, Int32 } from 'apache-arrow';

/**
 * The StorageType contract (src/storage/storage-type.ts), one suite run against every
 * storage type, as the durable and reservation stores have theirs: byte budgets that never
 * go over capacity, writers that report each message's size before it is written, placements
 * that replay exactly what was written in any order asked (app_metadata too), directories
 * emptied at start, and destroy and abort that leave nothing behind.
 */
let dir: string;
let types: Map<StorageTypeName, StorageType>;

/** Messages of a real stream: a schema, a dictionary, then batches, each with app_metadata. */
function stream(): { schema: Buffer; frames: Frame[] } {
  const dict = vectorFromArray(['a', 'b', 'a', 'c'], new Dictionary(new Utf8(), new Int32()));
  const messages = ipcMessages(
    tableToIPC(tableFromArrays({ d: dict as never, n: Int32Array.from([1, 2, 3, 4]) }), 'stream'),
  );
  const [schema, ...rest] = messages as [{ header: Buffer; body: Buffer }, ...{ header: Buffer; body: Buffer }[]];
  const extra = sampleMessages(4, 3).batches;
  const frames: Frame[] = [...rest, ...extra].map((m, i) => ({
    kind: i === 0 ? 'dictionary' : 'batch',
    header: m.header,
    body: m.body,
    appMetadata: Buffer.from(`meta-${i}`),
    rows: 4,
  }));
  return { schema: schema.header, frames };
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tierflight-storage-types-'));
  // A tier directory with a file from an earlier run: a start empties it.
  await mkdir(path.join(dir, 'mapped'), { recursive: true });
  await writeFile(path.join(dir, 'mapped', 'flight-99.arrow'), 'stale');
  types = createStorageTypes({
    memory: { capacity: 1 << 20 },
    disk_mapped: { path: path.join(dir, 'mapped'), capacity: 1 << 20 },
    disk: { path: path.join(dir, 'disk'), capacity: 1 << 20 },
  });
  for (const t of types.values()) await t.init();
});
afterAll(() => rm(dir, { recursive: true, force: true }));

const files = async (name: StorageTypeName): Promise<string[]> =>
  name === 'memory'
    ? []
    : (await readdir(path.join(dir, name === 'disk' ? 'disk' : 'mapped'))).filter((f) => f.startsWith('flight-'));

const bytes = (f: Frame) => Buffer.concat([f.header, f.body, f.appMetadata]);

for (const name of ['memory', 'disk_mapped', 'disk'] as const) {
  describe(`storage type contract: ${name}`, () => {
    it('starts with nothing in its directory', async () => {
      expect(await files(name)).toEqual([]);
      expect(types.get(name)!.used).toBe(0);
    });

    it('charges within its capacity only, and refuses a negative or excess release', () => {
      const t = types.get(name)!;
      expect(t.tryCharge(t.capacity + 1)).toBe(false);
      expect(t.used).toBe(0);
      expect(t.tryCharge(100)).toBe(true);
      expect(() => t.uncharge(101)).toThrow(RangeError);
      t.uncharge(100);
      expect(t.used).toBe(0);
    });

    it('replays what was written, in any order asked, with the bytes it reported', async () => {
      const t = types.get(name)!;
      const { schema, frames } = stream();
      const w = t.createWriter();
      let reported = w.schemaSize(schema);
      await w.writeSchema(schema);
      for (const f of frames) {
        reported += w.sizeOf(f);
        await w.append(f);
      }
      const written = [];
      for await (const f of w.written()) written.push(bytes(f));
      expect(written).toEqual(frames.map(bytes));
      reported += w.trailerSize();
      const p = await w.finish();
      expect(p.storage).toBe(name);
      expect(p.bytes).toBe(reported);
      const order = [3, 0, 2, 1];
      const pool = new BufferPool(1 << 20);
      const read: Frame[] = [];
      for await (const f of p.read(order, pool)) read.push(f);
      expect(read.map(bytes)).toEqual(order.map((i) => bytes(frames[i]!)));
      expect(read.map((f) => f.kind)).toEqual(order.map((i) => frames[i]!.kind));
      for (const f of read) {
        // A frame with `prefixed` is exactly one gRPC message of FlightData holding its parts.
        if (f.prefixed) expect(f.prefixed.readUInt32BE(1)).toBe(f.prefixed.length - 5);
      }
      if (p.intact) expect(await p.intact()).toBe(true);
      expect(await files(name)).toHaveLength(name === 'memory' ? 0 : 1);
      await p.destroy();
      expect(await files(name)).toEqual([]);
    });

    it('leaves nothing when a write is abandoned (twice is fine)', async () => {
      const t = types.get(name)!;
      const { schema, frames } = stream();
      const w = t.createWriter();
      await w.writeSchema(schema);
      await w.append(frames[0]!);
      await w.abort();
      await w.abort();
      expect(await files(name)).toEqual([]);
    });
  });
}
