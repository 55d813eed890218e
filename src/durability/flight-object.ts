import { END_OF_STREAM, framedSize } from '../ipc/ipc-stream.js';
import { storedPath, type FlightPath } from '../core/path.js';
import { IpcFramer } from '../ipc/ipc-framer.js';
import { readSequential, type IndexEntry } from '../ipc/stream-reader.js';
import type { Frame } from '../ipc/frame.js';
import { DurableStoreError, type DurableStore, type ObjectInfo } from '../durable/durable-store.js';
import type { StreamFile } from '../storage/storage-type.js';

/**
 * A flight as one durable object: a standard Arrow IPC stream (schema, dictionaries and
 * batches exactly as received, then the end-of-stream marker) that `pyarrow.ipc.open_stream`,
 * DuckDB or any Arrow tool reads, followed by Tierflight's manifest, which stream readers
 * never reach: the flight's path, creation and expiry times, totals, schema, and each
 * message's kind, offsets and app_metadata. A restarted server reads the manifest from
 * the object's tail, so data and metadata appear together, atomically.
 *
 * Tail layout: ... EOS | manifest JSON | u32 LE manifest length | "TFLIGHT1".
 */
export const OBJECT_MAGIC = Buffer.from('TFLIGHT1', 'latin1');
const TRAILER = 4 + OBJECT_MAGIC.length;
/** How much of the tail one read fetches, hoping the manifest fits in it. */
const TAIL_GUESS = 64 * 1024;

export interface FlightMeta {
  path: FlightPath;
  createdAt: number;
  expiresAt: number | undefined;
  totalRecords: number;
  totalBytes: number;
  /** The version tag tickets name (see FlightVersion.tag). */
  tag: string;
  /** When the path's first version was written (kept across overwrites); absent in older objects. */
  firstCreatedAt?: number | undefined;
  /** The owner (`x-tierflight-owner`) that wrote this version, if one was given. */
  owner?: string | undefined;
}

interface Manifest {
  format: 1;
  path: string;
  createdAt: number;
  expiresAt: number | null;
  totalRecords: number;
  totalBytes: number;
  /** Absent in objects written before tickets named versions. */
  tag?: string;
  /** Absent in objects written before flights kept their first creation time and owner. */
  firstCreatedAt?: number;
  owner?: string;
  schema: string;
  /** [kind, rows, headerAt, headerLength, bodyAt, bodyLength, app_metadata (base64)] */
  messages: ['d' | 'b', number, number, number, number, number, string][];
}

export interface FlightObject extends FlightMeta {
  key: string;
  schemaHeader: Buffer;
  index: IndexEntry[];
  size: number;
  /** The store's version of the object (see ObjectInfo.version), when it said. */
  version?: string | undefined;
}

/** Frames a flight into object bytes incrementally; the buffers returned are written in order. */
export class FlightObjectEncoder {
  private readonly framer = new IpcFramer();
  private schema: Buffer | undefined;

  get bytes(): number {
    return this.framer.bytes;
  }

  /** Where each message written so far sits in the object. */
  get entries(): readonly IndexEntry[] {
    return this.framer.index;
  }

  writeSchema(header: Buffer): Buffer[] {
    this.schema = header;
    return this.framer.schema(header).buffers;
  }

  writeMessage(frame: Frame): Buffer[] {
    return this.framer.message(frame).buffers;
  }

  /** The object written (after `finish`): what a restore reads it by. */
  object(key: string, meta: FlightMeta): FlightObject {
    if (!this.schema) throw new Error('a flight object needs its schema first');
    return flightObject(key, meta, this.schema, this.entries, this.bytes);
  }

  finish(meta: FlightMeta): Buffer[] {
    if (!this.schema) throw new Error('a flight object needs its schema first');
    return this.framer.raw([END_OF_STREAM, ...objectTail(meta, this.schema, this.framer.index)]).buffers;
  }
}

/**
 * What follows a flight object's stream part (schema, messages at `index`, end-of-stream
 * marker): the manifest and the trailer.
 */
export function objectTail(meta: FlightMeta, schema: Buffer, index: readonly IndexEntry[]): Buffer[] {
  const manifest: Manifest = {
    format: 1,
    path: meta.path,
    createdAt: meta.createdAt,
    expiresAt: meta.expiresAt ?? null,
    totalRecords: meta.totalRecords,
    totalBytes: meta.totalBytes,
    tag: meta.tag,
    firstCreatedAt: meta.firstCreatedAt ?? meta.createdAt,
    ...(meta.owner !== undefined ? { owner: meta.owner } : {}),
    schema: schema.toString('base64'),
    messages: index.map((e) => [
      e.kind === 'batch' ? 'b' : 'd',
      e.rows,
      e.headerAt,
      e.headerLength,
      e.bodyAt,
      e.bodyLength,
      e.appMetadata.toString('base64'),
    ]),
  };
  const json = Buffer.from(JSON.stringify(manifest), 'utf8');
  const trailer = Buffer.allocUnsafe(TRAILER);
  trailer.writeUInt32LE(json.length, 0);
  OBJECT_MAGIC.copy(trailer, 4);
  return [json, trailer];
}

/** A written object of `size` bytes whose messages sit at `index`: what a restore reads it by. */
export function flightObject(
  key: string,
  meta: FlightMeta,
  schema: Buffer,
  index: readonly IndexEntry[],
  size: number,
): FlightObject {
  return {
    key,
    size,
    path: meta.path,
    createdAt: meta.createdAt,
    expiresAt: meta.expiresAt,
    totalRecords: meta.totalRecords,
    totalBytes: meta.totalBytes,
    tag: meta.tag,
    firstCreatedAt: meta.firstCreatedAt ?? meta.createdAt,
    ...(meta.owner !== undefined ? { owner: meta.owner } : {}),
    schemaHeader: schema,
    index: [...index],
  };
}

/**
 * The object bytes of a flight, as a stream for `DurableStore.put`. Pass an encoder to read
 * its size and message index once the stream is consumed.
 */
export async function* encodeFlightObject(
  meta: FlightMeta,
  schemaHeader: Buffer,
  frames: AsyncIterable<Frame>,
  encoder = new FlightObjectEncoder(),
): AsyncGenerator<Buffer> {
  yield* encoder.writeSchema(schemaHeader);
  for await (const frame of frames) yield* encoder.writeMessage(frame);
  yield* encoder.finish(meta);
}

/** A flight's current copy to write an object from: its messages, and its file when that is a stream. */
export interface ObjectSource {
  frames: AsyncIterable<Frame>;
  streamFile?: StreamFile | undefined;
}

/**
 * Writes a flight's object under `key` and says what was written. When the copy is a
 * stream file of the whole flight and the store takes files itself (`putFile`: a link or a
 * kernel-side copy), the object is that file's stream plus the manifest — no byte passes
 * through the process; otherwise it is framed message by message from `source.frames` (not
 * read at all in the first case).
 */
export async function writeFlightObject(
  store: DurableStore,
  key: string,
  meta: FlightMeta,
  schemaHeader: Buffer,
  messageCount: number,
  source: ObjectSource,
): Promise<FlightObject> {
  const file = source.streamFile;
  if (store.putFile && file && isWholeStream(file, schemaHeader, messageCount)) {
    const stored = await store.putFile(key, file, objectTail(meta, schemaHeader, file.index));
    return { ...flightObject(key, meta, schemaHeader, file.index, stored.size), version: stored.version };
  }
  const encoder = new FlightObjectEncoder();
  const stored = await store.put(key, encodeFlightObject(meta, schemaHeader, source.frames, encoder));
  return { ...encoder.object(key, meta), version: stored.version };
}

/** Whether a stream file holds exactly the flight: its schema first, then all its messages. */
function isWholeStream(file: StreamFile, schemaHeader: Buffer, messageCount: number): boolean {
  const first = file.index[0];
  return file.index.length === messageCount && (!first || first.headerAt - 8 === framedSize(schemaHeader.length, 0));
}

/**
 * Reads a flight object's manifest from its tail; undefined when the object does not exist.
 * `listed`: what a listing said of it (size, version), which saves asking the store again.
 */
export async function readFlightObject(
  store: DurableStore,
  key: string,
  listed?: ObjectInfo,
): Promise<FlightObject | undefined> {
  if (listed) {
    try {
      return await readManifest(store, key, listed);
    } catch (err) {
      // Replaced (or removed) since it was listed: ask the store what is there now.
      if (!(err instanceof DurableStoreError) || err.kind === 'transient') throw err;
    }
  }
  const info = await store.head(key);
  return info ? readManifest(store, key, info) : undefined;
}

async function readManifest(store: DurableStore, key: string, info: ObjectInfo): Promise<FlightObject> {
  const bad = (why: string): never => {
    throw new DurableStoreError('permanent', store.id, key, `not a Tierflight flight object: ${why}`);
  };
  if (info.size < TRAILER) bad('too short');
  const tailStart = Math.max(0, info.size - TAIL_GUESS);
  let tail = await readRange(store, key, tailStart, info.size);
  if (!tail.subarray(tail.length - OBJECT_MAGIC.length).equals(OBJECT_MAGIC)) bad('no manifest trailer');
  const length = tail.readUInt32LE(tail.length - TRAILER);
  const manifestStart = info.size - TRAILER - length;
  if (manifestStart < 0) bad('manifest length out of range');
  if (manifestStart < tailStart) tail = await readRange(store, key, manifestStart, info.size);
  const offset = tail.length - TRAILER - length;
  let m: Manifest;
  try {
    m = JSON.parse(tail.subarray(offset, offset + length).toString('utf8')) as Manifest;
  } catch {
    return bad('manifest is not JSON');
  }
  if (m.format !== 1 || typeof m.path !== 'string' || !Array.isArray(m.messages)) bad('unknown manifest format');
  let path: FlightPath;
  try {
    path = storedPath(m.path);
  } catch (err) {
    return bad(`manifest path: ${(err as Error).message}`);
  }
  return {
    key,
    size: info.size,
    ...(info.version !== undefined ? { version: info.version } : {}),
    path,
    createdAt: m.createdAt,
    expiresAt: m.expiresAt ?? undefined,
    totalRecords: m.totalRecords,
    totalBytes: m.totalBytes,
    tag: m.tag ?? `c${m.createdAt}`,
    firstCreatedAt: typeof m.firstCreatedAt === 'number' ? m.firstCreatedAt : m.createdAt,
    ...(typeof m.owner === 'string' ? { owner: m.owner } : {}),
    schemaHeader: Buffer.from(m.schema, 'base64'),
    index: m.messages.map(([kind, rows, headerAt, headerLength, bodyAt, bodyLength, meta]) => ({
      kind: kind === 'b' ? 'batch' : 'dictionary',
      rows,
      headerAt,
      headerLength,
      bodyAt,
      bodyLength,
      appMetadata: Buffer.from(meta, 'base64'),
    })),
  };
}

/** Streams the given messages of a flight object, ranged reads only over what is needed. */
export function readFlightObjectMessages(
  store: DurableStore,
  object: FlightObject,
  indices: readonly number[],
): AsyncIterable<Frame> {
  return readSequential((start, end) => store.get(object.key, { start, end }), object.index, indices);
}

async function readRange(store: DurableStore, key: string, start: number, end: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of await store.get(key, { start, end })) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
