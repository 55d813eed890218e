/**
 * A bounds-checked reader of the Arrow IPC `Message` flatbuffer, just deep enough to
 * route and account a message without decoding its body: the header type, the body
 * length, a record batch's row count and buffer extents, a dictionary batch's id.
 * Stored messages are replayed byte for byte, so this never re-encodes anything.
 *
 * Flatbuffer layout used here: the buffer starts with a u32 offset to the root table; a
 * table starts with an i32 back-offset to its vtable; the vtable lists u16 field offsets.
 */

export const enum MessageType {
  None = 0,
  Schema = 1,
  DictionaryBatch = 2,
  RecordBatch = 3,
  Tensor = 4,
  SparseTensor = 5,
}

export interface MessageHeaderInfo {
  type: MessageType;
  bodyLength: number;
  /** Rows in a record batch (or in a dictionary batch's data). */
  rows: number;
  /** Dictionary id, for dictionary batches. */
  dictionaryId?: number;
  isDelta?: boolean;
}

export class InvalidMessageError extends Error {}

class FlatReader {
  constructor(private readonly buf: Buffer) {}

  private check(pos: number, size: number): void {
    if (!Number.isInteger(pos) || pos < 0 || pos + size > this.buf.length) {
      throw new InvalidMessageError(`flatbuffer offset ${pos}+${size} outside a ${this.buf.length}-byte header`);
    }
  }
  u8(pos: number): number {
    this.check(pos, 1);
    return this.buf.readUInt8(pos);
  }
  u16(pos: number): number {
    this.check(pos, 2);
    return this.buf.readUInt16LE(pos);
  }
  u32(pos: number): number {
    this.check(pos, 4);
    return this.buf.readUInt32LE(pos);
  }
  i32(pos: number): number {
    this.check(pos, 4);
    return this.buf.readInt32LE(pos);
  }
  i64(pos: number): number {
    this.check(pos, 8);
    const v = this.buf.readBigInt64LE(pos);
    if (v < 0n || v > BigInt(Number.MAX_SAFE_INTEGER)) throw new InvalidMessageError(`integer ${v} out of range`);
    return Number(v);
  }

  /** Root table position. */
  root(): number {
    return this.u32(0);
  }

  /** Absolute position of a table field, or undefined when absent. */
  field(table: number, index: number): number | undefined {
    const vtable = table - this.i32(table);
    const vtableSize = this.u16(vtable);
    const slot = 4 + 2 * index;
    if (slot + 2 > vtableSize) return undefined;
    const offset = this.u16(vtable + slot);
    return offset === 0 ? undefined : table + offset;
  }

  /** Follows a u32 offset stored at `pos`. */
  indirect(pos: number): number {
    return pos + this.u32(pos);
  }
}

const MESSAGE_HEADER_TYPE = 1;
const MESSAGE_HEADER = 2;
const MESSAGE_BODY_LENGTH = 3;
const BATCH_LENGTH = 0;
const BATCH_BUFFERS = 2;
const DICT_ID = 0;
const DICT_DATA = 1;
const DICT_IS_DELTA = 2;

/** Parses and sanity-checks a `Message` header; throws InvalidMessageError when it is not one. */
export function readMessageHeader(header: Buffer): MessageHeaderInfo {
  if (header.length < 8) throw new InvalidMessageError(`data_header of ${header.length} bytes is too short`);
  const r = new FlatReader(header);
  const msg = r.root();
  const typePos = r.field(msg, MESSAGE_HEADER_TYPE);
  const type = (typePos === undefined ? 0 : r.u8(typePos)) as MessageType;
  const bodyPos = r.field(msg, MESSAGE_BODY_LENGTH);
  const bodyLength = bodyPos === undefined ? 0 : r.i64(bodyPos);
  const headerPos = r.field(msg, MESSAGE_HEADER);
  if (type < MessageType.Schema || type > MessageType.SparseTensor || headerPos === undefined) {
    throw new InvalidMessageError(`data_header is not an Arrow IPC message (header type ${type})`);
  }
  const table = r.indirect(headerPos);
  switch (type) {
    case MessageType.RecordBatch:
      return { type, bodyLength, rows: readBatch(r, table, bodyLength) };
    case MessageType.DictionaryBatch: {
      const idPos = r.field(table, DICT_ID);
      const dataPos = r.field(table, DICT_DATA);
      const deltaPos = r.field(table, DICT_IS_DELTA);
      const rows = dataPos === undefined ? 0 : readBatch(r, r.indirect(dataPos), bodyLength);
      return {
        type,
        bodyLength,
        rows,
        dictionaryId: idPos === undefined ? 0 : r.i64(idPos),
        isDelta: deltaPos === undefined ? false : r.u8(deltaPos) !== 0,
      };
    }
    default:
      return { type, bodyLength, rows: 0 };
  }
}

/** Row count of a RecordBatch table; checks each buffer lies inside the body. */
function readBatch(r: FlatReader, table: number, bodyLength: number): number {
  const lengthPos = r.field(table, BATCH_LENGTH);
  const rows = lengthPos === undefined ? 0 : r.i64(lengthPos);
  const buffersPos = r.field(table, BATCH_BUFFERS);
  if (buffersPos !== undefined) {
    const vec = r.indirect(buffersPos);
    const count = r.u32(vec);
    for (let i = 0; i < count; i++) {
      const offset = r.i64(vec + 4 + i * 16);
      const length = r.i64(vec + 4 + i * 16 + 8);
      if (offset + length > bodyLength) {
        throw new InvalidMessageError(`buffer ${i} (${offset}+${length}) lies outside the ${bodyLength}-byte body`);
      }
    }
  }
  return rows;
}

const MESSAGE_VERSION = 0;

/**
 * Where a Schema message's `Schema` table sits inside its flatbuffer, and the metadata
 * version, so an IPC file footer can point at the table without re-encoding it.
 */
export function schemaTableOf(header: Buffer): { tablePosition: number; version: number } {
  const info = readMessageHeader(header);
  if (info.type !== MessageType.Schema) throw new InvalidMessageError(`expected a Schema message, got ${info.type}`);
  const r = new FlatReader(header);
  const msg = r.root();
  const versionPos = r.field(msg, MESSAGE_VERSION);
  const headerPos = r.field(msg, MESSAGE_HEADER) as number;
  return { tablePosition: r.indirect(headerPos), version: versionPos === undefined ? 0 : r.u16(versionPos) };
}

/** Whether a Schema message declares big-endian values (`endianness: Big`). */
export function isBigEndianSchema(header: Buffer): boolean {
  const { tablePosition } = schemaTableOf(header);
  const r = new FlatReader(header);
  const endianness = r.field(tablePosition, SCHEMA_ENDIANNESS);
  return endianness !== undefined && r.u16(endianness) === 1;
}

const SCHEMA_ENDIANNESS = 0;
