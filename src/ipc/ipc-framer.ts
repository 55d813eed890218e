import { messagePrefix, pad8, paddingFor } from './ipc-stream.js';
import type { IndexEntry } from './stream-reader.js';
import { bodyBuffers, bodyLength, type Frame } from './frame.js';

/** Buffers to write in order, starting at byte offset `at` of the file or object. */
export interface Framed {
  buffers: Buffer[];
  at: number;
}

/**
 * Lays out messages as encapsulated Arrow IPC (prefix, padded flatbuffer, padded body)
 * and keeps the index of where each one lands: what the disk tiers and durable objects
 * both write, and what their readers seek by.
 */
export class IpcFramer {
  private end = 0;
  readonly index: IndexEntry[] = [];

  /** Bytes laid out so far. */
  get bytes(): number {
    return this.end;
  }

  /** Raw bytes (magic, end-of-stream marker, footer) at the current end. */
  raw(buffers: Buffer[]): Framed {
    const at = this.end;
    for (const b of buffers) this.end += b.length;
    return { buffers, at };
  }

  /** The schema message; it is not in the index. */
  schema(header: Buffer): Framed {
    return this.encapsulate(header, []).framed;
  }

  /** A dictionary or record batch message, recorded in the index. */
  message(frame: Frame): Framed {
    const { framed, headerAt, bodyAt } = this.encapsulate(frame.header, bodyBuffers(frame));
    this.index.push({
      kind: frame.kind,
      rows: frame.rows,
      appMetadata: frame.appMetadata,
      headerAt,
      headerLength: frame.header.length,
      bodyAt,
      bodyLength: bodyLength(frame),
    });
    return framed;
  }

  /** `body` as the buffers it is held in (one, or pieces). */
  private encapsulate(header: Buffer, body: readonly Buffer[]): { framed: Framed; headerAt: number; bodyAt: number } {
    const at = this.end;
    const headerAt = at + 8;
    const bodyAt = headerAt + pad8(header.length);
    let bodyLength = 0;
    for (const b of body) bodyLength += b.length;
    this.end = bodyAt + pad8(bodyLength);
    const buffers = [messagePrefix(header.length), header, paddingFor(header.length), ...body, paddingFor(bodyLength)];
    return { framed: { buffers, at }, headerAt, bodyAt };
  }
}
