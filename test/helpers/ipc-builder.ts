import { Builder } from 'flatbuffers';
import { DictionaryBatch } from 'apache-arrow/fb/dictionary-batch';
import { DictionaryEncoding } from 'apache-arrow/fb/dictionary-encoding';
import { Endianness } from 'apache-arrow/fb/endianness';
import { Field } from 'apache-arrow/fb/field';
import { FieldNode } from 'apache-arrow/fb/field-node';
import { FloatingPoint } from 'apache-arrow/fb/floating-point';
import { Int } from 'apache-arrow/fb/int';
import { List } from 'apache-arrow/fb/list';
import { Message } from 'apache-arrow/fb/message';
import { MessageHeader } from 'apache-arrow/fb/message-header';
import { MetadataVersion } from 'apache-arrow/fb/metadata-version';
import { Precision } from 'apache-arrow/fb/precision';
import { RecordBatch } from 'apache-arrow/fb/record-batch';
import { Schema } from 'apache-arrow/fb/schema';
import { Buffer as BufferStruct } from 'apache-arrow/fb/buffer';
import { Type } from 'apache-arrow/fb/type';
import { Utf8 } from 'apache-arrow/fb/utf8';

/**
 * Arrow IPC messages built field by field, for what pyarrow never writes: big-endian
 * streams (the schema's `endianness` is Big and every value in the bodies is big-endian)
 * and several fields sharing one dictionary id. Flatbuffers come from the flatbuffers
 * library with Arrow's generated tables; bodies are laid out here.
 */
export type Column =
  | { name: string; type: 'int32'; values: (number | null)[] }
  | { name: string; type: 'float64'; values: number[] }
  | { name: string; type: 'utf8'; values: (string | null)[] }
  | { name: string; type: 'list<int64>'; values: bigint[][] }
  /** Indices into dictionary `id` (utf8 values, or int32 with `valueType`), `bits` wide. */
  | { name: string; type: 'dictionary'; id: number; bits: 8 | 16; values: number[]; valueType?: 'int32' };

export interface IpcMessage {
  header: Buffer;
  body: Buffer;
}

/** The Field of a column (dictionary columns: utf8 values, signed indices). */
function field(b: Builder, c: Column): number {
  const name = b.createString(c.name);
  let typeType: Type;
  let type: number;
  let children: number[] = [];
  let dictionary = 0;
  switch (c.type) {
    case 'int32':
      typeType = Type.Int;
      type = Int.createInt(b, 32, true);
      break;
    case 'float64':
      typeType = Type.FloatingPoint;
      type = FloatingPoint.createFloatingPoint(b, Precision.DOUBLE);
      break;
    case 'list<int64>': {
      const itemName = b.createString('item');
      const itemType = Int.createInt(b, 64, true);
      const itemChildren = Field.createChildrenVector(b, []);
      Field.startField(b);
      Field.addName(b, itemName);
      Field.addNullable(b, true);
      Field.addTypeType(b, Type.Int);
      Field.addType(b, itemType);
      Field.addChildren(b, itemChildren);
      children = [Field.endField(b)];
      typeType = Type.List;
      List.startList(b);
      type = List.endList(b);
      break;
    }
    case 'dictionary': {
      const index = Int.createInt(b, c.bits, true);
      DictionaryEncoding.startDictionaryEncoding(b);
      DictionaryEncoding.addId(b, BigInt(c.id));
      DictionaryEncoding.addIndexType(b, index);
      dictionary = DictionaryEncoding.endDictionaryEncoding(b);
      if (c.valueType === 'int32') {
        typeType = Type.Int;
        type = Int.createInt(b, 32, true);
        break;
      }
      typeType = Type.Utf8;
      Utf8.startUtf8(b);
      type = Utf8.endUtf8(b);
      break;
    }
    default:
      typeType = Type.Utf8;
      Utf8.startUtf8(b);
      type = Utf8.endUtf8(b);
  }
  const childVector = Field.createChildrenVector(b, children);
  Field.startField(b);
  Field.addName(b, name);
  Field.addNullable(b, true);
  Field.addTypeType(b, typeType);
  Field.addType(b, type);
  if (dictionary) Field.addDictionary(b, dictionary);
  Field.addChildren(b, childVector);
  return Field.endField(b);
}

function finish(b: Builder, headerType: MessageHeader, header: number, bodyLength: number): Buffer {
  Message.startMessage(b);
  Message.addVersion(b, MetadataVersion.V5);
  Message.addHeaderType(b, headerType);
  Message.addHeader(b, header);
  Message.addBodyLength(b, BigInt(bodyLength));
  b.finish(Message.endMessage(b));
  return Buffer.from(b.asUint8Array());
}

export function schemaMessage(columns: readonly Column[], bigEndian: boolean): IpcMessage {
  const b = new Builder(256);
  const fields = Schema.createFieldsVector(
    b,
    columns.map((c) => field(b, c)),
  );
  Schema.startSchema(b);
  Schema.addEndianness(b, bigEndian ? Endianness.Big : Endianness.Little);
  Schema.addFields(b, fields);
  return { header: finish(b, MessageHeader.Schema, Schema.endSchema(b), 0), body: Buffer.alloc(0) };
}

/** A body under construction: 8-aligned buffers, integers in the stream's byte order. */
class Body {
  readonly parts: Buffer[] = [];
  readonly buffers: { offset: number; length: number }[] = [];
  readonly nodes: { length: number; nulls: number }[] = [];
  private size = 0;

  constructor(private readonly bigEndian: boolean) {}

  add(bytes: Buffer): void {
    this.buffers.push({ offset: this.size, length: bytes.length });
    const padded = (bytes.length + 7) & ~7;
    this.parts.push(bytes, Buffer.alloc(padded - bytes.length));
    this.size += padded;
  }

  ints(values: readonly (number | bigint)[], width: 1 | 2 | 4 | 8): Buffer {
    const out = Buffer.alloc(values.length * width);
    const be = this.bigEndian;
    values.forEach((v, i) => {
      const at = i * width;
      if (width === 1) out.writeInt8(Number(v), at);
      else if (width === 2) void (be ? out.writeInt16BE(Number(v), at) : out.writeInt16LE(Number(v), at));
      else if (width === 4) void (be ? out.writeInt32BE(Number(v), at) : out.writeInt32LE(Number(v), at));
      else void (be ? out.writeBigInt64BE(BigInt(v), at) : out.writeBigInt64LE(BigInt(v), at));
    });
    return out;
  }

  doubles(values: readonly number[]): Buffer {
    const out = Buffer.alloc(values.length * 8);
    values.forEach((v, i) => void (this.bigEndian ? out.writeDoubleBE(v, i * 8) : out.writeDoubleLE(v, i * 8)));
    return out;
  }

  /** A validity bitmap (empty when nothing is null); records the field node. */
  validity(values: readonly unknown[]): void {
    const nulls = values.filter((v) => v === null).length;
    this.nodes.push({ length: values.length, nulls });
    if (nulls === 0) {
      this.add(Buffer.alloc(0));
      return;
    }
    const bits = Buffer.alloc(Math.ceil(values.length / 8));
    values.forEach((v, i) => {
      if (v !== null) bits[i >> 3] = (bits[i >> 3] as number) | (1 << (i & 7));
    });
    this.add(bits);
  }

  strings(values: readonly (string | null)[]): void {
    this.validity(values);
    const bytes = values.map((v) => Buffer.from(v ?? '', 'utf8'));
    const offsets = [0];
    for (const s of bytes) offsets.push((offsets.at(-1) as number) + s.length);
    this.add(this.ints(offsets, 4));
    this.add(Buffer.concat(bytes));
  }

  column(c: Column): void {
    switch (c.type) {
      case 'int32':
        this.validity(c.values);
        this.add(
          this.ints(
            c.values.map((v) => v ?? 0),
            4,
          ),
        );
        break;
      case 'float64':
        this.validity(c.values);
        this.add(this.doubles(c.values));
        break;
      case 'utf8':
        this.strings(c.values);
        break;
      case 'list<int64>': {
        this.validity(c.values);
        const offsets = [0];
        for (const l of c.values) offsets.push((offsets.at(-1) as number) + l.length);
        this.add(this.ints(offsets, 4));
        const items = c.values.flat();
        this.validity(items);
        this.add(this.ints(items, 8));
        break;
      }
      case 'dictionary':
        this.validity(c.values);
        this.add(this.ints(c.values, (c.bits / 8) as 1 | 2));
        break;
    }
  }

  get bytes(): Buffer {
    return Buffer.concat(this.parts);
  }
}

/** A RecordBatch table of `rows` rows over a finished body. */
function recordBatch(b: Builder, rows: number, body: Body): number {
  RecordBatch.startNodesVector(b, body.nodes.length);
  for (const n of [...body.nodes].reverse()) FieldNode.createFieldNode(b, BigInt(n.length), BigInt(n.nulls));
  const nodes = b.endVector();
  RecordBatch.startBuffersVector(b, body.buffers.length);
  for (const x of [...body.buffers].reverse()) BufferStruct.createBuffer(b, BigInt(x.offset), BigInt(x.length));
  const buffers = b.endVector();
  RecordBatch.startRecordBatch(b);
  RecordBatch.addLength(b, BigInt(rows));
  RecordBatch.addNodes(b, nodes);
  RecordBatch.addBuffers(b, buffers);
  return RecordBatch.endRecordBatch(b);
}

export function batchMessage(columns: readonly Column[], bigEndian: boolean): IpcMessage {
  const body = new Body(bigEndian);
  for (const c of columns) body.column(c);
  const bytes = body.bytes;
  const b = new Builder(256);
  const rows = columns[0]?.values.length ?? 0;
  return { header: finish(b, MessageHeader.RecordBatch, recordBatch(b, rows, body), bytes.length), body: bytes };
}

/** A dictionary batch of utf8 values for dictionary `id`. */
export function dictionaryMessage(id: number, values: readonly string[], bigEndian: boolean): IpcMessage {
  const body = new Body(bigEndian);
  body.strings(values);
  const bytes = body.bytes;
  const b = new Builder(256);
  const data = recordBatch(b, values.length, body);
  DictionaryBatch.startDictionaryBatch(b);
  DictionaryBatch.addId(b, BigInt(id));
  DictionaryBatch.addData(b, data);
  return {
    header: finish(b, MessageHeader.DictionaryBatch, DictionaryBatch.endDictionaryBatch(b), bytes.length),
    body: bytes,
  };
}
