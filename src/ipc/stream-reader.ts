import type { Readable } from 'node:stream';
import { allocateFlightData } from './flight-data-layout.js';
import type { BufferPool } from '../core/buffer-pool.js';
import type { Frame } from './frame.js';

/**
 * Where each message of a stored flight sits in its bytes (a tier file or a durable
 * object), kept in memory so any batch range is read without parsing the whole stream.
 */
export interface IndexEntry {
  kind: Frame['kind'];
  rows: number;
  appMetadata: Buffer;
  /** Offset of the flatbuffer (after the 8-byte prefix). */
  headerAt: number;
  headerLength: number;
  bodyAt: number;
  bodyLength: number;
}

export function entryAt(index: readonly IndexEntry[], i: number): IndexEntry {
  const entry = index[i];
  if (!entry) throw new Error(`no message ${i} in a ${index.length}-message file`);
  return entry;
}

/** A frame with room for a message's header and body, read into in place. */
export function frameFor(e: IndexEntry, pool?: BufferPool): Frame & { prefixed: Buffer } {
  const allocate = pool ? (size: number) => pool.acquire(size) : undefined;
  const { prefixed, header, body } = allocateFlightData(e.headerLength, e.appMetadata, e.bodyLength, allocate);
  return { kind: e.kind, rows: e.rows, appMetadata: e.appMetadata, header, body, prefixed };
}

/**
 * Reads messages front to back in large chunks: one sequential pass per run of adjacent
 * messages (the dictionaries a range needs may sit before it).
 */
export async function* readSequential(
  open: (start: number, end: number) => Readable | Promise<Readable>,
  index: readonly IndexEntry[],
  indices: readonly number[],
): AsyncGenerator<Frame> {
  let i = 0;
  while (i < indices.length) {
    let j = i + 1;
    while (j < indices.length && indices[j] === (indices[j - 1] as number) + 1) j++;
    const first = entryAt(index, indices[i] as number);
    const last = entryAt(index, indices[j - 1] as number);
    const start = first.headerAt - 8;
    const end = last.bodyAt + last.bodyLength;
    // A stream that breaks mid-range (a store's connection reset) is opened again where it broke.
    const cursor = new ChunkCursor(await open(start, end), start, (from) => open(from, end));
    try {
      for (let k = i; k < j; k++) {
        const e = entryAt(index, indices[k] as number);
        const frame = frameFor(e);
        await cursor.skipTo(e.headerAt);
        await cursor.readInto(frame.header);
        await cursor.skipTo(e.bodyAt);
        await cursor.readInto(frame.body);
        yield frame;
      }
    } finally {
      cursor.close();
    }
    i = j;
  }
}

/** Reopens after a broken stream, at most this many times per range. */
const REOPENS = 2;

/**
 * Sequential reads over a file or object stream: copy out or skip bytes, in order. A stream
 * that fails mid-way (an S3 body whose connection was reset: "aborted") is opened again
 * from the first byte not read yet, up to REOPENS times; then its error is the read's.
 */
export class ChunkCursor {
  private chunks: AsyncIterator<Buffer>;
  private chunk: Buffer = Buffer.alloc(0);
  private at = 0;
  private reopens = REOPENS;

  constructor(
    private stream: Readable,
    private position: number,
    private readonly reopen?: (from: number) => Readable | Promise<Readable>,
  ) {
    this.chunks = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  }

  async skipTo(position: number): Promise<void> {
    while (this.position < position) {
      await this.ensure();
      const n = Math.min(this.chunk.length - this.at, position - this.position);
      this.at += n;
      this.position += n;
    }
  }

  async readInto(target: Buffer): Promise<void> {
    let done = 0;
    while (done < target.length) {
      await this.ensure();
      const n = this.chunk.copy(target, done, this.at, Math.min(this.chunk.length, this.at + target.length - done));
      this.at += n;
      this.position += n;
      done += n;
    }
  }

  close(): void {
    this.stream.destroy();
  }

  private async ensure(): Promise<void> {
    if (this.at < this.chunk.length) return;
    const next = await this.nextChunk();
    if (next.done) throw new Error(`unexpected end of data at ${this.position}`);
    this.chunk = next.value;
    this.at = 0;
  }

  private async nextChunk(): Promise<IteratorResult<Buffer>> {
    for (;;) {
      try {
        return await this.chunks.next();
      } catch (err) {
        if (!this.reopen || this.reopens-- <= 0) throw err;
        this.stream.destroy();
        this.stream = await this.reopen(this.position);
        this.chunks = this.stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
      }
    }
  }
}
