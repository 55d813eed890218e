import { flightPath } from '../../src/core/path.js';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { tableFromArrays, tableToIPC } from 'apache-arrow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DurableStore } from '../../src/durable/durable-store.js';
import { FilesystemStore } from '../../src/durable/filesystem-store.js';
import {
  encodeFlightObject,
  readFlightObject,
  readFlightObjectMessages,
  writeFlightObject,
  type FlightMeta,
} from '../../src/durability/flight-object.js';
import { FileStorageType } from '../../src/storage/types/file.js';
import { S3Store } from '../../src/durable/s3-store.js';
import { MessageType, readMessageHeader } from '../../src/ipc/message-header.js';
import type { Frame } from '../../src/storage/storage-type.js';
import { startMoto, type Moto } from '../helpers/moto.js';
import { ipcMessages } from '../helpers/raw-client.js';
import { PYTHON } from '../setup/python-env.js';

/** A real Arrow stream: int32 and dictionary-encoded strings, three batches. */
function flight(): { schema: Buffer; frames: Frame[] } {
  const part = (n: number) =>
    tableFromArrays({
      v: Int32Array.from({ length: n }, (_, i) => i * n),
      s: Array.from({ length: n }, (_, i) => `w${i % 3}`),
    });
  const table = part(5).concat(part(7), part(2));
  const [schema, ...rest] = ipcMessages(tableToIPC(table, 'stream'));
  const frames = rest.map((m, i): Frame => {
    const info = readMessageHeader(m.header);
    return {
      kind: info.type === MessageType.RecordBatch ? 'batch' : 'dictionary',
      header: m.header,
      body: m.body,
      appMetadata: Buffer.from(i % 2 ? `meta-${i}` : ''),
      rows: info.rows,
    };
  });
  return { schema: (schema as { header: Buffer }).header, frames };
}

async function* iterate<T>(items: T[]): AsyncGenerator<T> {
  yield* items;
}

const META: FlightMeta = {
  path: flightPath('a/b'),
  createdAt: 1_000,
  expiresAt: 61_000,
  totalRecords: 14,
  totalBytes: 1234,
  tag: 'v1',
};

let moto: Moto;
let dir: string;
const stores: Record<string, () => DurableStore> = {
  filesystem: () => new FilesystemStore('local', path.join(dir, 'store')),
  s3: () =>
    new S3Store({ id: 's3', bucket: 'objects', region: 'us-east-1', endpoint: moto.endpoint, forcePathStyle: true }),
};

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tierflight-object-'));
  moto = await startMoto();
  await moto.createBucket('objects');
});
afterAll(async () => {
  await moto?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe.each(['filesystem', 's3'])('flight objects in the %s store', (name) => {
  it('keep every message, its app_metadata and the flight metadata, readable by range', async () => {
    const store = (stores[name] as () => DurableStore)();
    const { schema, frames } = flight();
    expect(frames.filter((f) => f.kind === 'dictionary').length).toBeGreaterThan(0);
    await store.put('t/a/b', encodeFlightObject(META, schema, iterate(frames)));
    const object = await readFlightObject(store, 't/a/b');
    expect(object).toMatchObject({ ...META, key: 't/a/b' });
    expect(object?.schemaHeader.equals(schema)).toBe(true);
    const all: Frame[] = [];
    for await (const f of readFlightObjectMessages(
      store,
      object!,
      frames.map((_, i) => i),
    ))
      all.push(f);
    expect(
      all.map((f) => [f.kind, f.rows, f.header.toString('hex'), f.body.toString('hex'), f.appMetadata.toString()]),
    ).toEqual(
      frames.map((f) => [f.kind, f.rows, f.header.toString('hex'), f.body.toString('hex'), f.appMetadata.toString()]),
    );
    const some: Frame[] = [];
    for await (const f of readFlightObjectMessages(store, object!, [0, frames.length - 1])) some.push(f);
    expect(some.map((f) => f.body.toString('hex'))).toEqual(
      [frames[0], frames.at(-1)].map((f) => f!.body.toString('hex')),
    );
    expect(await readFlightObject(store, 't/missing')).toBeUndefined();
    await store.put('t/plain', iterate([Buffer.from('not a flight object at all')]));
    await expect(readFlightObject(store, 't/plain')).rejects.toThrow(/not a Tierflight flight object/);
    store.close();
  });
});

it('is a standard Arrow IPC stream that pyarrow.ipc.open_stream reads', async () => {
  const { schema, frames } = flight();
  const chunks: Buffer[] = [];
  for await (const c of encodeFlightObject(META, schema, iterate(frames))) chunks.push(c);
  const file = path.join(dir, 'object.arrows');
  await writeFile(file, Buffer.concat(chunks));
  const out = execFileSync(
    PYTHON,
    [
      '-c',
      `import pyarrow as pa, json; t = pa.ipc.open_stream(pa.OSFile("${file}")).read_all(); print(json.dumps([t.num_rows, t.column("s").to_pylist()[:4]]))`,
    ],
    { encoding: 'utf8' },
  );
  expect(JSON.parse(out)).toEqual([14, ['w0', 'w1', 'w2', 'w0']]);
});

describe('a flight on the disk tier', () => {
  /** The flight written by the `disk` storage type's own writer; its placement. */
  async function onDisk(schema: Buffer, frames: Frame[]) {
    const type = new FileStorageType('disk', path.join(dir, 'disk'), 1 << 30, 'stream');
    await type.init();
    const writer = type.createWriter();
    await writer.writeSchema(schema);
    for (const f of frames) await writer.append(f);
    return writer.finish();
  }

  /** The object encodeFlightObject frames for `meta` (what every other way must equal). */
  async function framedObject(schema: Buffer, frames: Frame[], meta: FlightMeta): Promise<Buffer> {
    const framed: Buffer[] = [];
    for await (const c of encodeFlightObject(meta, schema, iterate(frames))) framed.push(c);
    return Buffer.concat(framed);
  }

  /** Every message of the placement, as the tier serves them. */
  async function tierBodies(placement: { read(indices: readonly number[]): AsyncIterable<Frame> }, count: number) {
    const all: string[] = [];
    for await (const f of placement.read(Array.from({ length: count }, (_, i) => i))) all.push(f.body.toString('hex'));
    return all;
  }

  it('is linked into a filesystem store on the same filesystem: one copy of the bytes, the object the framed one', async () => {
    const { schema, frames } = flight();
    const placement = await onDisk(schema, frames);
    const file = placement.streamFile!;
    const stream = (await readFile(file.path)).subarray(0, file.bytes);
    const store = new FilesystemStore('local', path.join(dir, 'linked'));
    await writeFlightObject(store, 'k/l', META, schema, frames.length, {
      streamFile: file,
      frames: iterate([]),
    });
    const objectFile = path.join(dir, 'linked', 'k', 'l');
    expect((await stat(objectFile)).ino).toBe((await stat(file.path)).ino);
    expect((await readFile(objectFile)).equals(await framedObject(schema, frames, META))).toBe(true);
    // The tier's stream is as it was; the tier still serves every message.
    expect((await readFile(file.path)).subarray(0, file.bytes).equals(stream)).toBe(true);
    expect(await tierBodies(placement, frames.length)).toEqual(frames.map((f) => f.body.toString('hex')));

    // A second object of the same file (another version's manifest) cannot share it: it is
    // copied without the first one's tail, and the first object is unchanged.
    const later = { ...META, tag: 'v2', createdAt: 2_000 };
    await writeFlightObject(store, 'k/m', later, schema, frames.length, { streamFile: file, frames: iterate([]) });
    const second = path.join(dir, 'linked', 'k', 'm');
    expect((await stat(second)).ino).not.toBe((await stat(file.path)).ino);
    expect((await readFile(second)).equals(await framedObject(schema, frames, later))).toBe(true);
    expect((await readFile(objectFile)).equals(await framedObject(schema, frames, META))).toBe(true);
    expect(await readFlightObject(store, 'k/l')).toMatchObject({ tag: 'v1', createdAt: 1_000 });
    expect(await readFlightObject(store, 'k/m')).toMatchObject({ tag: 'v2', createdAt: 2_000 });

    // With the linked object gone, the file is no one else's but still has that tail: copied and cut.
    await store.delete('k/l');
    await writeFlightObject(store, 'k/n', META, schema, frames.length, { streamFile: file, frames: iterate([]) });
    expect((await readFile(path.join(dir, 'linked', 'k', 'n'))).equals(await framedObject(schema, frames, META))).toBe(
      true,
    );
    // Evicting the flight from the tier leaves the object whole.
    await placement.destroy();
    expect((await readFile(second)).equals(await framedObject(schema, frames, later))).toBe(true);
  });

  it('written twice at once from one file (by two stores, as a class and the spool do): both whole, one linked', async () => {
    const { schema, frames } = flight();
    const placement = await onDisk(schema, frames);
    const file = placement.streamFile!;
    const roots = [path.join(dir, 'twice-a'), path.join(dir, 'twice-b')];
    const metas = [META, { ...META, tag: 'v2' }];
    await Promise.all(
      metas.map((m, i) =>
        writeFlightObject(new FilesystemStore(`s${i}`, roots[i]!), 'k/x', m, schema, frames.length, {
          streamFile: file,
          frames: iterate([]),
        }),
      ),
    );
    const inode = (await stat(file.path)).ino;
    let linked = 0;
    for (const [i, m] of metas.entries()) {
      const object = path.join(roots[i]!, 'k', 'x');
      expect((await readFile(object)).equals(await framedObject(schema, frames, m))).toBe(true);
      if ((await stat(object)).ino === inode) linked++;
    }
    expect(linked).toBe(1);
  });

  it('is copied into a filesystem store on another filesystem', async () => {
    const { schema, frames } = flight();
    const placement = await onDisk(schema, frames);
    const file = placement.streamFile!;
    const root = await mkdtemp('/dev/shm/tierflight-store-');
    try {
      // The premise: /dev/shm is a filesystem of its own here (tmpfs), so a link fails with EXDEV.
      expect((await stat(root)).dev).not.toBe((await stat(file.path)).dev);
      const store = new FilesystemStore('local', root);
      await writeFlightObject(store, 'k/x', META, schema, frames.length, { streamFile: file, frames: iterate([]) });
      expect((await readFile(path.join(root, 'k', 'x'))).equals(await framedObject(schema, frames, META))).toBe(true);
      expect((await stat(file.path)).size).toBe(file.bytes);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it('is taken into a filesystem store as it is (never read message by message), byte for byte the framed object', async () => {
    const { schema, frames } = flight();
    const placement = await onDisk(schema, frames);
    expect(placement.streamFile).toBeDefined();
    const store = new FilesystemStore('local', path.join(dir, 'copied'));
    let framedReads = 0;
    const source = {
      streamFile: placement.streamFile,
      frames: (async function* () {
        framedReads++;
        yield* placement.read(frames.map((_, i) => i));
      })(),
    };
    const object = await writeFlightObject(store, 'k/a', META, schema, frames.length, source);
    expect(framedReads).toBe(0); // the file was copied, not read message by message

    const framed: Buffer[] = [];
    for await (const c of encodeFlightObject(META, schema, iterate(frames))) framed.push(c);
    const copied = await readFile(path.join(dir, 'copied', 'k', 'a'));
    expect(copied.equals(Buffer.concat(framed))).toBe(true);
    expect(object.size).toBe(copied.length);

    const read = await readFlightObject(store, 'k/a');
    expect(read).toMatchObject({ ...META, key: 'k/a', size: copied.length, version: object.version });
    expect(read?.index).toEqual(object.index);
    // The tier still serves the flight.
    const all: Frame[] = [];
    for await (const f of placement.read(frames.map((_, i) => i))) all.push(f);
    expect(all.map((f) => f.body.toString('hex'))).toEqual(frames.map((f) => f.body.toString('hex')));
  });

  it('is framed message by message for a store that cannot copy files, or a file that is not the whole flight', async () => {
    const { schema, frames } = flight();
    const placement = await onDisk(schema, frames);
    const s3 = stores.s3!();
    const object = await writeFlightObject(s3, 'k/b', META, schema, frames.length, {
      streamFile: placement.streamFile,
      frames: placement.read(frames.map((_, i) => i)),
    });
    const fromS3 = await readFlightObject(s3, 'k/b');
    expect(fromS3?.index).toEqual(object.index);
    s3.close();

    // A file that holds fewer messages than the flight is not copied.
    const store = new FilesystemStore('local', path.join(dir, 'partial'));
    let framedReads = 0;
    await writeFlightObject(store, 'k/c', META, schema, frames.length + 1, {
      streamFile: placement.streamFile,
      frames: (async function* () {
        framedReads++;
        yield* placement.read(frames.map((_, i) => i));
      })(),
    });
    expect(framedReads).toBe(1);
  });

  it('copied into a store that fails leaves no object and no temporary file', async () => {
    const { schema, frames } = flight();
    const placement = await onDisk(schema, frames);
    const root = path.join(dir, 'failing');
    const store = new FilesystemStore('local', root);
    const gone = { ...placement.streamFile!, path: path.join(dir, 'no-such-file.arrows') };
    await expect(
      writeFlightObject(store, 'k/d', META, schema, frames.length, { streamFile: gone, frames: iterate([]) }),
    ).rejects.toMatchObject({ kind: 'transient' });
    expect(await readdir(path.join(root, 'k'))).toEqual([]);
  });
});
