import { isUtf8 } from 'node:buffer';
import type { FieldModel } from './arrow-schema.js';
import { checkCompressedFrame } from './compression-frames.js';
import type { Table } from './flatbuffer-verifier.js';
import { windowOf, type Pieces } from './pieces.js';

/**
 * The body layout of one record or dictionary batch, checked against the schema's fields:
 * field nodes and buffers in schema order (depth first), each buffer inside the body and
 * 8-aligned, large enough for the lengths announced, first and last offsets in range, run
 * ends reaching the length, compressed buffers one well-formed frame of the codec. Used by
 * IpcStreamValidator (stream-validator.ts).
 */

// RecordBatch field numbers (Message.fbs).
const BATCH_LENGTH = 0;
const BATCH_NODES = 1;
const BATCH_BUFFERS = 2;
const BATCH_COMPRESSION = 3;
const BATCH_VARIADIC_COUNTS = 4;

/** MetadataVersion values a stream may use. */
export const METADATA_V4 = 3;
export const METADATA_V5 = 4;

/** A rule broken inside one message, before the message index is known. */
export class Broken extends Error {
  constructor(
    readonly rule: string,
    detail: string,
  ) {
    super(detail);
  }
}

/** A compressed buffer may not claim more than this once uncompressed (readers allocate it). */
const MAX_UNCOMPRESSED = 2n ** 31n;
const MAX_RATIO = 1n << 16n;

interface Node {
  length: number;
  nulls: number;
}

/**
 * Walks the batch's field nodes and buffers in schema order (depth first), checking each
 * against its field's layout. Returns the batch's row count.
 */
export function checkBatch(
  fields: FieldModel[],
  batch: Table,
  body: Buffer | Pieces,
  version: number,
  bigEndian: boolean,
  dictionary = false,
): number {
  const length = batch.i64(BATCH_LENGTH, 'batch length');
  if (length < 0) throw new Broken('lengths', `negative batch length ${length}`);
  const nodes = batch.vector(BATCH_NODES, 16, 'field nodes');
  const buffers = batch.vector(BATCH_BUFFERS, 16, 'buffers');
  if (!nodes || !buffers) throw new Broken('field-nodes', 'the batch has no field node or buffer vector');
  const compression = batch.table(BATCH_COMPRESSION, 'compression');
  if (compression) {
    const codec = compression.u8(0);
    if (codec > 1) throw new Broken('compression', `unknown compression codec ${codec} (LZ4_FRAME or ZSTD)`);
    if (compression.u8(1) !== 0) throw new Broken('compression', 'unknown compression method');
  }
  const variadic = batch.vector(BATCH_VARIADIC_COUNTS, 8, 'variadicBufferCounts');
  const walker = new BatchWalker(
    batch.buffer,
    nodes,
    buffers,
    variadic,
    new BodyValues(body, bigEndian),
    compression?.u8(0),
    version,
    dictionary,
  );
  for (const field of fields) {
    const columnLength = walker.field(field);
    if (columnLength !== length) {
      throw new Broken(
        'lengths',
        `column "${field.name}" has ${columnLength} values in a ${dictionary ? 'dictionary' : 'record'} batch of ${length}`,
      );
    }
  }
  walker.done();
  return length;
}

/**
 * Integers read from a body in the stream's byte order (the schema's `endianness`). Only
 * values are in that order: the flatbuffer header, and the uncompressed-length prefix of
 * a compressed buffer, are little-endian in every stream.
 */
class BodyValues {
  constructor(
    readonly bytes: Buffer | Pieces,
    private readonly bigEndian: boolean,
  ) {}

  get length(): number {
    return this.bytes.length;
  }

  int(pos: number, width: 2 | 4 | 8): number {
    const b = this.bytes;
    if (width === 2) return this.bigEndian ? b.readInt16BE(pos) : b.readInt16LE(pos);
    if (width === 4) return this.bigEndian ? b.readInt32BE(pos) : b.readInt32LE(pos);
    return Number(this.bigEndian ? b.readBigInt64BE(pos) : b.readBigInt64LE(pos));
  }
}

class BatchWalker {
  private node = 0;
  private buffer = 0;
  private variadic = 0;

  constructor(
    private readonly header: Buffer,
    private readonly nodes: { start: number; length: number },
    private readonly buffers: { start: number; length: number },
    private readonly variadicCounts: { start: number; length: number } | undefined,
    private readonly body: BodyValues,
    /** The body's compression codec, when it is compressed. */
    private readonly codec: number | undefined,
    private readonly version: number,
    /** Check every offset, not just the first and last: readers concatenate dictionary deltas. */
    private readonly allOffsets: boolean,
  ) {}

  done(): void {
    if (this.node !== this.nodes.length) {
      throw new Broken('field-nodes', `${this.nodes.length} field nodes where the schema has ${this.node}`);
    }
    if (this.buffer !== this.buffers.length) {
      throw new Broken('buffers', `${this.buffers.length} buffers where the schema needs ${this.buffer}`);
    }
    if (this.variadic !== (this.variadicCounts?.length ?? 0)) {
      throw new Broken('buffers', `${this.variadicCounts?.length} variadic buffer counts for ${this.variadic} views`);
    }
  }

  private i64(pos: number, what: string): number {
    const v = this.header.readBigInt64LE(pos);
    if (v < 0n || v > BigInt(Number.MAX_SAFE_INTEGER)) throw new Broken('lengths', `${what} ${v} is out of range`);
    return Number(v);
  }

  private nextNode(field: FieldModel): Node {
    if (this.node >= this.nodes.length) {
      throw new Broken('field-nodes', `only ${this.nodes.length} field nodes; field "${field.name}" has none`);
    }
    const at = this.nodes.start + 16 * this.node++;
    const length = this.i64(at, `field "${field.name}" length`);
    const nulls = this.i64(at + 8, `field "${field.name}" null count`);
    if (nulls > length) throw new Broken('lengths', `field "${field.name}" has ${nulls} nulls in ${length} values`);
    return { length, nulls };
  }

  /** The next buffer's place in the body and its (uncompressed) size. */
  private nextBuffer(field: FieldModel): { offset: number; size: number; raw: boolean } {
    const index = this.buffer++;
    if (index >= this.buffers.length) {
      throw new Broken('buffers', `only ${this.buffers.length} buffers; field "${field.name}" needs more`);
    }
    const at = this.buffers.start + 16 * index;
    const offset = this.i64(at, `buffer ${index} offset`);
    const length = this.i64(at + 8, `buffer ${index} length`);
    if (offset % 8 !== 0) throw new Broken('buffers', `buffer ${index} starts at ${offset}, not on 8 bytes`);
    if (offset + length > this.body.length) {
      throw new Broken(
        'buffers',
        `buffer ${index} (${offset}+${length}) lies outside the ${this.body.length}-byte body`,
      );
    }
    if (this.codec === undefined || length === 0) return { offset, size: length, raw: true };
    // A compressed buffer starts with its uncompressed length; -1 means stored as is.
    if (length < 8) throw new Broken('compression', `compressed buffer ${index} is shorter than its length prefix`);
    const declared = this.body.bytes.readBigInt64LE(offset);
    if (declared === -1n) return { offset: offset + 8, size: length - 8, raw: true };
    if (declared < 0n || declared > MAX_UNCOMPRESSED || declared > BigInt(length) * MAX_RATIO) {
      throw new Broken(
        'compression',
        `compressed buffer ${index} of ${length} bytes declares ${declared} uncompressed`,
      );
    }
    const size = Number(declared);
    const problem = checkCompressedFrame(this.codec, windowOf(this.body.bytes, offset + 8, offset + length), size);
    if (problem) throw new Broken('compression', `compressed buffer ${index}: ${problem}`);
    return { offset, size, raw: false };
  }

  private need(field: FieldModel, what: string, size: number, bytes: number): void {
    if (size < bytes) {
      throw new Broken('buffers', `field "${field.name}" ${what} has ${size} bytes; ${bytes} are needed`);
    }
  }

  private validity(field: FieldModel, node: Node): void {
    const b = this.nextBuffer(field);
    if (node.nulls > 0) this.need(field, 'validity bitmap', b.size, Math.ceil(node.length / 8));
  }

  /**
   * Offsets: room for length+1 of them, and (uncompressed) a first and last offset that
   * frame at most `limit` values. Returns the last offset.
   */
  private offsets(field: FieldModel, node: Node, width: 4 | 8): { size: number; last: number | undefined } {
    const b = this.nextBuffer(field);
    if (node.length === 0) return { size: b.size, last: undefined };
    this.need(field, 'offsets', b.size, (node.length + 1) * width);
    if (!b.raw) return { size: b.size, last: undefined };
    const read = (i: number): number => this.body.int(b.offset + i * width, width);
    const first = read(0);
    const last = read(node.length);
    if (first < 0 || last < first) {
      throw new Broken('offsets', `field "${field.name}" offsets run from ${first} to ${last}`);
    }
    if (this.allOffsets) {
      for (let i = 1, previous = first; i <= node.length; i++) {
        const offset = read(i);
        if (offset < previous) throw new Broken('offsets', `field "${field.name}" offset ${i} goes back to ${offset}`);
        previous = offset;
      }
    }
    return { size: b.size, last };
  }

  /** Where the next buffer starts in the body (uncompressed bodies). */
  private nextBufferAt(): number {
    if (this.buffer >= this.buffers.length) return 0;
    return Number(this.header.readBigInt64LE(this.buffers.start + 16 * this.buffer));
  }

  /** Every string is valid UTF-8 (dictionaries only: readers check concatenated deltas in full). */
  private utf8(field: FieldModel, node: Node, offsetsAt: number, dataAt: number, width: 4 | 8): void {
    const read = (i: number): number => this.body.int(offsetsAt + width * i, width);
    for (let i = 0, start = read(0); i < node.length; i++) {
      const end = read(i + 1);
      if (!isUtf8(this.body.bytes.subarray(dataAt + start, dataAt + end))) {
        throw new Broken('utf8', `field "${field.name}" value ${i} is not valid UTF-8`);
      }
      start = end;
    }
  }

  /** Checks one field (and its children); returns its length. */
  field(field: FieldModel): number {
    const node = this.nextNode(field);
    const { layout } = field;
    switch (layout.kind) {
      case 'null':
        break;
      case 'fixed':
        this.validity(field, node);
        this.need(field, 'values', this.nextBuffer(field).size, Math.ceil((node.length * layout.bits) / 8));
        break;
      case 'binary': {
        this.validity(field, node);
        const offsets = this.nextBufferAt();
        const { last } = this.offsets(field, node, layout.offsetBytes);
        const data = this.nextBuffer(field);
        if (last !== undefined && data.raw) this.need(field, 'data', data.size, last);
        if (this.allOffsets && field.type.endsWith('utf8') && last !== undefined && data.raw) {
          this.utf8(field, node, offsets, data.offset, layout.offsetBytes);
        }
        break;
      }
      case 'view': {
        this.validity(field, node);
        this.need(field, 'views', this.nextBuffer(field).size, node.length * 16);
        if (!this.variadicCounts || this.variadic >= this.variadicCounts.length) {
          throw new Broken('buffers', `no variadic buffer count for view field "${field.name}"`);
        }
        const count = this.i64(this.variadicCounts.start + 8 * this.variadic++, 'variadic buffer count');
        if (count > this.buffers.length) throw new Broken('buffers', `variadic buffer count ${count} is too large`);
        for (let i = 0; i < count; i++) this.nextBuffer(field);
        break;
      }
      case 'list': {
        this.validity(field, node);
        const { last } = this.offsets(field, node, layout.offsetBytes);
        const child = this.field(field.children[0] as FieldModel);
        if (last !== undefined && last > child) {
          throw new Broken('offsets', `field "${field.name}" offsets reach ${last}, its child has ${child} values`);
        }
        break;
      }
      case 'list-view':
        this.validity(field, node);
        this.need(field, 'offsets', this.nextBuffer(field).size, node.length * layout.offsetBytes);
        this.need(field, 'sizes', this.nextBuffer(field).size, node.length * layout.offsetBytes);
        this.field(field.children[0] as FieldModel);
        break;
      case 'fixed-list': {
        this.validity(field, node);
        const child = this.field(field.children[0] as FieldModel);
        this.childAtLeast(field, child, node.length * layout.size);
        break;
      }
      case 'struct':
        this.validity(field, node);
        for (const c of field.children) this.childAtLeast(field, this.field(c), node.length);
        break;
      case 'union':
        if (this.version < METADATA_V5) this.nextBuffer(field); // V4 unions had a validity bitmap, always empty
        this.noNulls(field, node);
        this.need(field, 'type ids', this.nextBuffer(field).size, node.length);
        if (layout.dense) this.need(field, 'offsets', this.nextBuffer(field).size, node.length * 4);
        for (const c of field.children) {
          const child = this.field(c);
          if (!layout.dense) this.childAtLeast(field, child, node.length);
        }
        break;
      case 'run-end': {
        this.noNulls(field, node);
        const runEndsField = field.children[0] as FieldModel;
        const runEndsData = this.buffer + 1; // after the run ends' validity bitmap
        const runEnds = this.field(runEndsField);
        const values = this.field(field.children[1] as FieldModel);
        const last = runEnds > 0 ? this.lastRunEnd(runEndsField, runEndsData, runEnds) : undefined;
        if (last !== undefined && last < node.length) {
          throw new Broken('lengths', `field "${field.name}" runs end at ${last}, short of its ${node.length} values`);
        }
        if (runEnds > values)
          throw new Broken('lengths', `field "${field.name}" has ${runEnds} run ends for ${values} values`);
        if (node.length > 0 && runEnds === 0) throw new Broken('lengths', `field "${field.name}" has no run ends`);
        break;
      }
    }
    return node.length;
  }

  /** The last run end (when the body is not compressed), which must reach the array's length. */
  private lastRunEnd(field: FieldModel, bufferIndex: number, count: number): number | undefined {
    if (this.codec !== undefined) return undefined;
    const at = this.buffers.start + 16 * bufferIndex;
    const bytes = field.layout.kind === 'fixed' ? field.layout.bits / 8 : 0;
    const pos = Number(this.header.readBigInt64LE(at)) + (count - 1) * bytes;
    return this.body.int(pos, bytes === 2 || bytes === 4 ? bytes : 8);
  }

  /** Unions and run-end encoded arrays have no validity bitmap of their own. */
  private noNulls(field: FieldModel, node: Node): void {
    if (node.nulls > 0)
      throw new Broken('lengths', `${field.type} field "${field.name}" with ${node.nulls} nulls of its own`);
  }

  private childAtLeast(field: FieldModel, child: number, needed: number): void {
    if (child < needed) {
      throw new Broken('lengths', `field "${field.name}" needs ${needed} child values, its child has ${child}`);
    }
  }
}
