import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ChunkCursor } from '../../src/ipc/stream-reader.js';

/** A stream of `bytes` from `from` on, in 10-byte chunks, that fails after `failAfter` bytes (if given). */
function source(bytes: Buffer, from: number, failAfter?: number): Readable {
  let at = from;
  let sent = 0;
  return new Readable({
    read() {
      if (failAfter !== undefined && sent >= failAfter) {
        this.destroy(new Error('aborted'));
        return;
      }
      if (at >= bytes.length) {
        this.push(null);
        return;
      }
      const chunk = bytes.subarray(at, at + 10);
      at += chunk.length;
      sent += chunk.length;
      this.push(chunk);
    },
  });
}

describe('reading a stored range', () => {
  const bytes = Buffer.from(Array.from({ length: 200 }, (_, i) => i));

  it('opens a stream that broke mid-range again where it broke, and reads on', async () => {
    const opened: number[] = [];
    const cursor = new ChunkCursor(source(bytes, 0, 35), 0, (from) => {
      opened.push(from);
      return source(bytes, from, opened.length === 1 ? 50 : undefined); // breaks once more
    });
    const out = Buffer.alloc(150);
    await cursor.skipTo(20);
    await cursor.readInto(out);
    cursor.close();
    expect(out.equals(bytes.subarray(20, 170))).toBe(true);
    expect(opened).toEqual([40, 90]); // each time from the first byte not read yet
  });

  it('gives up after two reopens with the stream’s own error', async () => {
    const cursor = new ChunkCursor(source(bytes, 0, 10), 0, (from) => source(bytes, from, 10));
    await expect(cursor.readInto(Buffer.alloc(100))).rejects.toThrow('aborted');
  });
});
