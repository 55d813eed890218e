/**
 * Bytes held as the several buffers they arrived in. A large DoPut message is kept as the
 * socket reads that carried it (see flight/grpc-internals.ts), so its body is a list of
 * views rather than one buffer; this is what the checks, the tiers and the send path read
 * it through. Joining it into one buffer is a copy, made only where something needs the
 * body contiguous (and then once).
 */

/** The integer reads the IPC checks make: what a Buffer has, and Pieces offer too. */
export interface ByteSource {
  readonly length: number;
  readUInt8(at: number): number;
  readUInt16LE(at: number): number;
  readUInt32LE(at: number): number;
  readUIntLE(at: number, bytes: number): number;
  readInt16LE(at: number): number;
  readInt16BE(at: number): number;
  readInt32LE(at: number): number;
  readInt32BE(at: number): number;
  readBigInt64LE(at: number): bigint;
  readBigInt64BE(at: number): bigint;
  readBigUInt64LE(at: number): bigint;
  /** Bytes [start, end) as one buffer (for Pieces: a view inside one part, else a copy). */
  subarray(start: number, end: number): Buffer;
}

const EMPTY = Buffer.alloc(0);

/** Throws unless [start, end) lies inside `length` bytes. */
function checkRange(start: number, end: number, length: number): void {
  if (!(start >= 0 && start <= end && end <= length)) {
    throw new RangeError(`bytes ${start} to ${end} lie outside ${length}`);
  }
}

/** Reads at a position of a source that is not one buffer: the few bytes gathered, then read. */
abstract class GatheredReads implements ByteSource {
  abstract readonly length: number;
  abstract subarray(start: number, end: number): Buffer;

  private at(pos: number, bytes: number): Buffer {
    if (!Number.isInteger(pos) || pos < 0 || pos + bytes > this.length) {
      throw new RangeError(`reading ${bytes} bytes at ${pos} of ${this.length}`);
    }
    return this.subarray(pos, pos + bytes);
  }

  readUInt8(pos: number): number {
    return this.at(pos, 1).readUInt8(0);
  }
  readUInt16LE(pos: number): number {
    return this.at(pos, 2).readUInt16LE(0);
  }
  readUInt32LE(pos: number): number {
    return this.at(pos, 4).readUInt32LE(0);
  }
  readUIntLE(pos: number, bytes: number): number {
    return this.at(pos, bytes).readUIntLE(0, bytes);
  }
  readInt16LE(pos: number): number {
    return this.at(pos, 2).readInt16LE(0);
  }
  readInt16BE(pos: number): number {
    return this.at(pos, 2).readInt16BE(0);
  }
  readInt32LE(pos: number): number {
    return this.at(pos, 4).readInt32LE(0);
  }
  readInt32BE(pos: number): number {
    return this.at(pos, 4).readInt32BE(0);
  }
  readBigInt64LE(pos: number): bigint {
    return this.at(pos, 8).readBigInt64LE(0);
  }
  readBigInt64BE(pos: number): bigint {
    return this.at(pos, 8).readBigInt64BE(0);
  }
  readBigUInt64LE(pos: number): bigint {
    return this.at(pos, 8).readBigUInt64LE(0);
  }
}

export class Pieces extends GatheredReads {
  readonly length: number;
  /** Where each part ends, counted from the start of the first. */
  private readonly ends: number[];
  private joined: Buffer | undefined;

  constructor(readonly parts: readonly Buffer[]) {
    super();
    let end = 0;
    this.ends = parts.map((p) => (end += p.length));
    this.length = end;
  }

  /** The bytes as one buffer: the only part as it is, else a copy (made once). */
  join(): Buffer {
    if (this.parts.length === 1) return this.parts[0] as Buffer;
    this.joined ??= this.subarray(0, this.length);
    return this.joined;
  }

  subarray(start: number, end: number): Buffer {
    this.check(start, end);
    if (start === end) return EMPTY;
    const i = this.partAt(start);
    const part = this.parts[i] as Buffer;
    const partStart = (this.ends[i] as number) - part.length;
    if (end <= (this.ends[i] as number)) return part.subarray(start - partStart, end - partStart);
    const out = Buffer.allocUnsafe(end - start);
    this.copy(out, 0, start, end);
    return out;
  }

  /** Bytes [start, end) as views of the parts, in order. */
  views(start = 0, end = this.length): Buffer[] {
    this.check(start, end);
    const out: Buffer[] = [];
    for (let i = start === end ? this.parts.length : this.partAt(start); i < this.parts.length; i++) {
      const part = this.parts[i] as Buffer;
      const partEnd = this.ends[i] as number;
      const partStart = partEnd - part.length;
      out.push(part.subarray(Math.max(start, partStart) - partStart, Math.min(end, partEnd) - partStart));
      if (end <= partEnd) break;
    }
    return out;
  }

  /** As Buffer.copy: bytes [sourceStart, sourceEnd) into `target` at `targetStart`; returns the count. */
  copy(target: Uint8Array, targetStart = 0, sourceStart = 0, sourceEnd = this.length): number {
    const end = Math.min(sourceEnd, this.length, sourceStart + (target.length - targetStart));
    let at = targetStart;
    for (const v of this.views(sourceStart, Math.max(sourceStart, end))) {
      target.set(v, at);
      at += v.length;
    }
    return at - targetStart;
  }

  /** Bytes [start, end) to read from: a view when they lie in one part. */
  window(start: number, end: number): ByteSource {
    this.check(start, end);
    const i = start === end ? 0 : this.partAt(start);
    if (start === end || end <= (this.ends[i] as number)) return this.subarray(start, end);
    return new PiecesWindow(this, start, end - start);
  }

  /** The part holding byte `at` (binary search over where parts end). */
  private partAt(at: number): number {
    let lo = 0;
    let hi = this.ends.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((this.ends[mid] as number) > at) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  private check(start: number, end: number): void {
    checkRange(start, end, this.length);
  }
}

class PiecesWindow extends GatheredReads {
  constructor(
    private readonly pieces: Pieces,
    private readonly start: number,
    readonly length: number,
  ) {
    super();
  }

  subarray(start: number, end: number): Buffer {
    checkRange(start, end, this.length);
    return this.pieces.subarray(this.start + start, this.start + end);
  }
}

/** Bytes [start, end) of a buffer or pieces, to read from. */
export function windowOf(bytes: Buffer | Pieces, start: number, end: number): ByteSource {
  return bytes instanceof Pieces ? bytes.window(start, end) : bytes.subarray(start, end);
}
