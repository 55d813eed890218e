import { isUtf8 } from 'node:buffer';
import { parseSchema, SchemaRuleError, type FieldModel, type SchemaModel } from './arrow-schema.js';
import { checkCompressedFrame } from './compression-frames.js';
import { FlatBuffer, FlatbufferError, type Table } from './flatbuffer-verifier.js';
import { InvalidMessageError, MessageType, readMessageHeader } from './message-header.js';

/**
 * Validation of an incoming Arrow IPC stream, message by message, before anything is
 * stored: what Arrow's own readers check when they open a message, so that a stream this
 * accepts is one every Arrow reader can read back. The header flatbuffer is verified as
 * it is read (see FlatBuffer); the schema comes first and once; every record batch's
 * field nodes and buffers must match the schema and lie inside the body, with sizes that
 * hold the values the lengths announce; dictionary batches must name a dictionary the
 * schema declares, all dictionaries come before the first record batch, and a delta only
 * follows its base. Only fixed-size facts are read from the body (the uncompressed-length
 * prefix of compressed buffers, the first and last offset of variable-size values), so
 * the cost is per column, never per value.
 */

/** A message that breaks a rule; `rule` is a short stable name for logs and tests. */
export class IpcValidationError extends Error {
  constructor(
    readonly index: number,
    readonly rule: string,
    detail: string,
  ) {
    super(`message ${index} breaks the IPC rule "${rule}": ${detail}`);
  }
}

/** What the storage layer needs to know about a validated message. */
export interface ValidatedMessage {
  type: MessageType.Schema | MessageType.RecordBatch | MessageType.DictionaryBatch;
  bodyLength: number;
  /** Rows of a record batch. */
  rows: number;
}

// Message.fbs field numbers.
const MESSAGE_VERSION = 0;
const MESSAGE_HEADER_TYPE = 1;
const MESSAGE_HEADER = 2;
const MESSAGE_BODY_LENGTH = 3;
const MESSAGE_METADATA = 4;
const BATCH_LENGTH = 0;
const BATCH_NODES = 1;
const BATCH_BUFFERS = 2;
const BATCH_COMPRESSION = 3;
const BATCH_VARIADIC_COUNTS = 4;
const DICT_ID = 0;
const DICT_DATA = 1;
const DICT_IS_DELTA = 2;
const METADATA_V4 = 3;
const METADATA_V5 = 4;

/** A rule broken inside one message, before the message index is known. */
class Broken extends Error {
  constructor(
    readonly rule: string,
    detail: string,
  ) {
    super(detail);
  }
}

/** What DoPut asks of each incoming message (see IpcStreamValidator). */
export interface MessageChecker {
  message(index: number, header: Buffer, body: Buffer): ValidatedMessage;
  finish(index: number): void;
}

/**
 * Reads only what storage needs (type, body length, rows), with bounds checks: the DoPut
 * path without validation, kept to measure the validator's cost (bench/validator.ts).
 */
export class HeaderOnlyReader implements MessageChecker {
  message(index: number, header: Buffer, body: Buffer): ValidatedMessage {
    try {
      const info = readMessageHeader(header);
      const { type } = info;
      if (type !== MessageType.Schema && type !== MessageType.RecordBatch && type !== MessageType.DictionaryBatch) {
        throw new InvalidMessageError(`message type ${type}`);
      }
      if (body.length !== info.bodyLength) throw new InvalidMessageError('body length differs from the header');
      return { type, bodyLength: info.bodyLength, rows: info.rows };
    } catch (err) {
      if (err instanceof InvalidMessageError) throw new IpcValidationError(index, 'header', err.message);
      throw err;
    }
  }

  finish(): void {}
}

export class IpcStreamValidator implements MessageChecker {
  private schema: SchemaModel | undefined;
  /** Dictionaries sent so far (their base, so deltas may follow). */
  private readonly loaded = new Set<number>();
  private batches = 0;

  /**
   * Validates one message (`index` is its position in the stream, for the error) and
   * returns what it is. Throws IpcValidationError.
   */
  message(index: number, header: Buffer, body: Buffer): ValidatedMessage {
    try {
      return this.check(header, body);
    } catch (err) {
      if (err instanceof Broken) throw new IpcValidationError(index, err.rule, err.message);
      if (err instanceof FlatbufferError) throw new IpcValidationError(index, 'flatbuffer', err.message);
      if (err instanceof SchemaRuleError) throw new IpcValidationError(index, 'schema', err.message);
      throw err;
    }
  }

  /** Checks the stream as a whole once it ended; `index` is the count of messages. */
  finish(index: number): void {
    const missing = this.missingDictionaries();
    if (this.loaded.size > 0 && missing.length > 0) {
      throw new IpcValidationError(
        index,
        'dictionaries',
        `the stream ended after some dictionaries but without dictionary ids ${missing.join(', ')}`,
      );
    }
  }

  private missingDictionaries(): number[] {
    return [...(this.schema?.dictionaries.keys() ?? [])].filter((id) => !this.loaded.has(id));
  }

  private check(header: Buffer, body: Buffer): ValidatedMessage {
    if (header.length < 8) throw new Broken('flatbuffer', `a ${header.length}-byte data_header is too short`);
    const msg = new FlatBuffer(header).root();
    const version = msg.i16(MESSAGE_VERSION);
    if (version !== METADATA_V4 && version !== METADATA_V5) {
      throw new Broken('version', `metadata version ${version + 1} is not supported (V4 or V5)`);
    }
    const bodyLength = msg.i64(MESSAGE_BODY_LENGTH, 'bodyLength');
    if (bodyLength !== body.length) {
      throw new Broken('body-length', `data_body has ${body.length} bytes but the header declares ${bodyLength}`);
    }
    msg.tables(MESSAGE_METADATA, 'message custom_metadata');
    const type = msg.u8(MESSAGE_HEADER_TYPE);
    const table = msg.table(MESSAGE_HEADER, 'message header');
    if (!table || type < MessageType.Schema || type > MessageType.SparseTensor) {
      throw new Broken('message-type', `header type ${type} is not an Arrow IPC message`);
    }
    switch (type) {
      case MessageType.Schema:
        if (this.schema) throw new Broken('schema-once', 'a second schema message');
        this.schema = parseSchema(table);
        return { type, bodyLength, rows: 0 };
      case MessageType.RecordBatch:
        return { type, bodyLength, rows: this.recordBatch(table, body, version) };
      case MessageType.DictionaryBatch:
        this.dictionaryBatch(table, body, version);
        return { type, bodyLength, rows: 0 };
      default:
        throw new Broken('message-type', `tensor messages (type ${type}) do not belong in a Flight stream`);
    }
  }

  private requireSchema(): SchemaModel {
    if (!this.schema) throw new Broken('schema-first', 'a batch before the schema');
    return this.schema;
  }

  private recordBatch(table: Table, body: Buffer, version: number): number {
    const schema = this.requireSchema();
    const missing = this.missingDictionaries();
    if (missing.length > 0) {
      throw new Broken('dictionaries', `a record batch before the dictionaries with ids ${missing.join(', ')}`);
    }
    this.batches++;
    return checkBatch(schema.fields, table, body, version);
  }

  private dictionaryBatch(table: Table, body: Buffer, version: number): void {
    const schema = this.requireSchema();
    const id = table.i64(DICT_ID, 'dictionary id');
    const value = schema.dictionaries.get(id);
    if (!value) throw new Broken('dictionary-id', `dictionary id ${id} is not declared by the schema`);
    const delta = table.bool(DICT_IS_DELTA);
    if (delta && !this.loaded.has(id))
      throw new Broken('dictionary-delta', `a delta for dictionary ${id} before its base`);
    if (!delta && this.loaded.has(id) && this.batches === 0 && this.missingDictionaries().length > 0) {
      // Readers load one dictionary per id before the first batch; a repeat there leaves another missing.
      throw new Broken('dictionaries', `dictionary ${id} sent again before every dictionary was sent`);
    }
    const data = table.table(DICT_DATA, 'dictionary data');
    if (!data) throw new Broken('dictionary-data', `dictionary ${id} has no data`);
    checkBatch([value], data, body, version, true);
    this.loaded.add(id);
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
function checkBatch(fields: FieldModel[], batch: Table, body: Buffer, version: number, dictionary = false): number {
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
  const walker = new BatchWalker(batch.buffer, nodes, buffers, variadic, body, compression?.u8(0), version, dictionary);
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

class BatchWalker {
  private node = 0;
  private buffer = 0;
  private variadic = 0;

  constructor(
    private readonly header: Buffer,
    private readonly nodes: { start: number; length: number },
    private readonly buffers: { start: number; length: number },
    private readonly variadicCounts: { start: number; length: number } | undefined,
    private readonly body: Buffer,
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
    const declared = this.body.readBigInt64LE(offset);
    if (declared === -1n) return { offset: offset + 8, size: length - 8, raw: true };
    if (declared < 0n || declared > MAX_UNCOMPRESSED || declared > BigInt(length) * MAX_RATIO) {
      throw new Broken(
        'compression',
        `compressed buffer ${index} of ${length} bytes declares ${declared} uncompressed`,
      );
    }
    const size = Number(declared);
    const problem = checkCompressedFrame(this.codec, this.body.subarray(offset + 8, offset + length), size);
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
    const read = (i: number): number => {
      const pos = b.offset + i * width;
      const v = width === 4 ? this.body.readInt32LE(pos) : Number(this.body.readBigInt64LE(pos));
      return v;
    };
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
    const read = (i: number): number =>
      width === 4 ? this.body.readInt32LE(offsetsAt + 4 * i) : Number(this.body.readBigInt64LE(offsetsAt + 8 * i));
    for (let i = 0, start = read(0); i < node.length; i++) {
      const end = read(i + 1);
      if (!isUtf8(this.body.subarray(dataAt + start, dataAt + end))) {
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
    if (bytes === 2) return this.body.readInt16LE(pos);
    if (bytes === 4) return this.body.readInt32LE(pos);
    return Number(this.body.readBigInt64LE(pos));
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
