import { Builder } from 'flatbuffers';
import { InvalidArgumentError } from '../errors.js';
import { parseSchema, type FieldModel } from './arrow-schema.js';
import { METADATA_V5 } from './batch-layout.js';
import { FlatBuffer, type Table } from './flatbuffer-verifier.js';
import { bodyOf, type Frame } from './frame.js';
import { allocateFlightData } from './flight-data-layout.js';
import { MessageType, readMessageHeader } from './message-header.js';

// Field numbers from Arrow's Message.fbs and Schema.fbs.
const MESSAGE_VERSION = 0;
const MESSAGE_HEADER = 2;
const MESSAGE_BODY_LENGTH = 3;
const MESSAGE_METADATA = 4;
const SCHEMA_ENDIANNESS = 0;
const SCHEMA_FIELDS = 1;
const SCHEMA_METADATA = 2;
const SCHEMA_FEATURES = 3;
const BATCH_LENGTH = 0;
const BATCH_NODES = 1;
const BATCH_BUFFERS = 2;
const BATCH_COMPRESSION = 3;
const BATCH_VARIADIC_COUNTS = 4;
const KV_KEY = 0;
const KV_VALUE = 1;

/** How many field nodes, buffers and variadic buffer counts one top-level column takes in a batch. */
interface Extent {
  nodes: number;
  buffers: number;
  variadics: number;
}

/**
 * Column projection without decoding values (a ticket's `columns`): the schema message
 * rewritten with the chosen top-level fields, in the order asked; each record batch's header
 * rewritten with their field nodes and buffers, and its body gathered from their buffers
 * (compressed buffers are compressed one by one, so they gather the same way); only the
 * dictionary batches the chosen fields use (nested ones included) are kept, as they are.
 * Nested fields go with their top-level field.
 */
export class Projection {
  private constructor(
    /** The projected schema message (a flatbuffer `Message`). */
    readonly schemaHeader: Buffer,
    /** Top-level field indices in the stored schema, in the order asked. */
    private readonly picks: readonly number[],
    private readonly fields: readonly FieldModel[],
    private readonly dictionaryIds: ReadonlySet<number>,
  ) {}

  /** The projection of a stored schema to `columns`; INVALID_ARGUMENT naming the columns it does not have. */
  static of(schemaHeader: Buffer, columns: readonly string[]): Projection {
    const fb = new FlatBuffer(schemaHeader);
    const message = fb.root();
    const schema = message.table(MESSAGE_HEADER, 'message header') as Table;
    const model = parseSchema(schema);
    const names = model.fields.map((f) => f.name);
    const unknown = columns.filter((c) => !names.includes(c));
    if (unknown.length > 0) {
      throw new InvalidArgumentError(
        `no column${unknown.length > 1 ? 's' : ''} ${unknown.map((c) => `"${c}"`).join(', ')} in the flight; it has ` +
          `${names
            .slice(0, 20)
            .map((n) => `"${n}"`)
            .join(', ')}${names.length > 20 ? ` and ${names.length - 20} more` : ''}`,
      );
    }
    const twice = columns.filter((c, i) => columns.indexOf(c) !== i);
    if (twice.length > 0) throw new InvalidArgumentError(`column "${twice[0]}" is named twice`);
    if (names.filter((n, i) => names.indexOf(n) !== i).some((n) => columns.includes(n))) {
      throw new InvalidArgumentError('the flight has several columns of a name asked for: project it by another name');
    }
    const picks = columns.map((c) => names.indexOf(c));
    const ids = new Set<number>();
    const collect = (f: FieldModel): void => {
      if (f.dictionary && !ids.has(f.dictionary.id)) {
        ids.add(f.dictionary.id);
        collect(f.dictionary.value);
      }
      for (const c of f.children) collect(c);
    };
    for (const i of picks) collect(model.fields[i] as FieldModel);
    return new Projection(projectSchema(schemaHeader, message, schema, picks), picks, model.fields, ids);
  }

  /** Whether a dictionary batch is one a chosen field uses. */
  keeps(dictionary: Frame): boolean {
    return this.dictionaryIds.has(readMessageHeader(dictionary.header).dictionaryId ?? -1);
  }

  /**
   * A record batch with only the chosen columns: a new header, and the chosen buffers copied
   * once, straight into a FlightData message ready to send (`prefixed`, in a buffer from
   * `allocate`).
   */
  batch(frame: Frame, allocate?: (size: number) => Buffer): Frame {
    const fb = new FlatBuffer(frame.header);
    const message = fb.root();
    const version = message.i16(MESSAGE_VERSION);
    const batch = message.table(MESSAGE_HEADER, 'message header') as Table;
    const raw = frame.header;
    const nodes = batch.vector(BATCH_NODES, 16, 'field nodes') ?? { start: 0, length: 0 };
    const buffers = batch.vector(BATCH_BUFFERS, 16, 'buffers') ?? { start: 0, length: 0 };
    const variadic = batch.vector(BATCH_VARIADIC_COUNTS, 8, 'variadic counts');
    // Where each top-level column's nodes, buffers and variadic counts start.
    const starts: (Extent & { extent: Extent })[] = [];
    const at: Extent = { nodes: 0, buffers: 0, variadics: 0 };
    for (const field of this.fields) {
      const extent = { nodes: 0, buffers: 0, variadics: 0 };
      measure(field, version, extent, (k) =>
        Number(raw.readBigInt64LE((variadic?.start ?? 0) + 8 * (at.variadics + k))),
      );
      starts.push({ ...at, extent });
      at.nodes += extent.nodes;
      at.buffers += extent.buffers;
      at.variadics += extent.variadics;
    }
    if (at.nodes !== nodes.length || at.buffers !== buffers.length) {
      throw new Error(
        `a stored batch has ${nodes.length} nodes and ${buffers.length} buffers, its schema ${at.nodes} and ${at.buffers}`,
      );
    }
    const pickedNodes: Buffer[] = [];
    const pickedBuffers: { offset: number; length: number }[] = [];
    const pickedVariadics: bigint[] = [];
    const pieces: { from: number; length: number; at: number }[] = [];
    let bodyLength = 0;
    for (const i of this.picks) {
      const s = starts[i] as (typeof starts)[number];
      pickedNodes.push(raw.subarray(nodes.start + 16 * s.nodes, nodes.start + 16 * (s.nodes + s.extent.nodes)));
      for (let k = 0; k < s.extent.buffers; k++) {
        const pos = buffers.start + 16 * (s.buffers + k);
        const offset = Number(raw.readBigInt64LE(pos));
        const length = Number(raw.readBigInt64LE(pos + 8));
        pickedBuffers.push({ offset: bodyLength, length });
        pieces.push({ from: offset, length, at: bodyLength });
        bodyLength += (length + 7) & ~7;
      }
      for (let k = 0; k < s.extent.variadics; k++)
        pickedVariadics.push(raw.readBigInt64LE((variadic?.start ?? 0) + 8 * (s.variadics + k)));
    }

    const b = new Builder(256 + 16 * (pickedBuffers.length + pickedNodes.length));
    const metadata = copyMetadata(b, message);
    const variadicVector =
      variadic !== undefined
        ? (() => {
            b.startVector(8, pickedVariadics.length, 8);
            for (let k = pickedVariadics.length - 1; k >= 0; k--) b.addInt64(pickedVariadics[k] as bigint);
            return b.endVector();
          })()
        : undefined;
    b.startVector(16, pickedBuffers.length, 8);
    for (let k = pickedBuffers.length - 1; k >= 0; k--) {
      const { offset, length } = pickedBuffers[k] as { offset: number; length: number };
      b.prep(8, 16);
      b.writeInt64(BigInt(length));
      b.writeInt64(BigInt(offset));
    }
    const buffersVector = b.endVector();
    const allNodes = Buffer.concat(pickedNodes);
    b.startVector(16, allNodes.length / 16, 8);
    for (let k = allNodes.length / 16 - 1; k >= 0; k--) {
      b.prep(8, 16);
      b.writeInt64(allNodes.readBigInt64LE(16 * k + 8)); // null count
      b.writeInt64(allNodes.readBigInt64LE(16 * k)); // length
    }
    const nodesVector = b.endVector();
    const compressed = batch.table(BATCH_COMPRESSION, 'compression');
    let compression = 0;
    if (compressed) {
      b.startObject(2);
      b.addFieldInt8(0, compressed.u8(0), 0);
      b.addFieldInt8(1, compressed.u8(1), 0);
      compression = b.endObject();
    }
    b.startObject(5);
    b.addFieldInt64(BATCH_LENGTH, BigInt(batch.i64(BATCH_LENGTH, 'batch length')), 0n);
    b.addFieldOffset(BATCH_NODES, nodesVector, 0);
    b.addFieldOffset(BATCH_BUFFERS, buffersVector, 0);
    if (compressed) b.addFieldOffset(BATCH_COMPRESSION, compression, 0);
    if (variadicVector !== undefined) b.addFieldOffset(BATCH_VARIADIC_COUNTS, variadicVector, 0);
    const header = b.endObject();
    b.startObject(5);
    b.addFieldInt16(MESSAGE_VERSION, version, 0);
    b.addFieldInt8(1, MessageType.RecordBatch, 0);
    b.addFieldOffset(MESSAGE_HEADER, header, 0);
    b.addFieldInt64(MESSAGE_BODY_LENGTH, BigInt(bodyLength), 0n);
    if (metadata !== undefined) b.addFieldOffset(MESSAGE_METADATA, metadata, 0);
    b.finish(b.endObject());
    const built = b.asUint8Array();
    const out = allocateFlightData(built.length, frame.appMetadata, bodyLength, allocate);
    out.header.set(built);
    let end = 0;
    for (const p of pieces) {
      if (p.at > end) out.body.fill(0, end, p.at); // the padding after the buffer before
      bodyOf(frame).copy(out.body, p.at, p.from, p.from + p.length);
      end = p.at + p.length;
    }
    out.body.fill(0, end);
    return {
      kind: 'batch',
      header: out.header,
      body: out.body,
      appMetadata: Buffer.from(frame.appMetadata),
      rows: frame.rows,
      prefixed: out.prefixed,
    };
  }
}

/** Adds up the field nodes, buffers and variadic counts a field takes in a batch (as batch-layout.ts walks them). */
function measure(field: FieldModel, version: number, into: Extent, variadicCount: (k: number) => number): void {
  into.nodes++;
  const { layout } = field;
  const children = () => {
    for (const c of field.children) measure(c, version, into, variadicCount);
  };
  switch (layout.kind) {
    case 'null':
      return;
    case 'run-end':
      return children();
    case 'fixed':
      into.buffers += 2;
      return;
    case 'binary':
      into.buffers += 3;
      return;
    case 'view':
      into.buffers += 2 + variadicCount(into.variadics);
      into.variadics++;
      return;
    case 'list':
      into.buffers += 2;
      return children();
    case 'list-view':
      into.buffers += 3;
      return children();
    case 'fixed-list':
    case 'struct':
      into.buffers += 1;
      return children();
    case 'union':
      into.buffers += (version < METADATA_V5 ? 1 : 0) + 1 + (layout.dense ? 1 : 0);
      return children();
  }
}

/**
 * The schema message with only the fields at `picks`: a new Message and Schema table whose
 * fields vector points at the stored message's own Field tables (and custom metadata and
 * features), which follow it in the same buffer unchanged — nothing of a field is re-encoded.
 */
function projectSchema(header: Buffer, message: Table, schema: Table, picks: readonly number[]): Buffer {
  const b = new Builder(header.length + 256);
  // The stored message first: a builder writes back to front, so it ends up last, 8-aligned
  // (its 8-byte scalars stay aligned), and everything built after it may point into it.
  b.startVector(1, header.length, 8);
  for (let i = header.length - 1; i >= 0; i--) b.writeInt8(header[i] as number);
  const embedded = b.endVector();
  const into = (pos: number) => embedded - 4 - pos; // a position in the stored message, as a builder offset
  const target = (table: Table, index: number) => {
    const p = table.fieldAt(index);
    return p === undefined ? undefined : into(p + header.readUInt32LE(p));
  };
  const fields = schema.vector(SCHEMA_FIELDS, 4, 'schema fields') ?? { start: 0, length: 0 };
  b.startVector(4, picks.length, 4);
  for (let k = picks.length - 1; k >= 0; k--) {
    const slot = fields.start + 4 * (picks[k] as number);
    b.addOffset(into(slot + header.readUInt32LE(slot)));
  }
  const fieldsVector = b.endVector();
  const schemaMetadata = target(schema, SCHEMA_METADATA);
  const features = target(schema, SCHEMA_FEATURES);
  const messageMetadata = target(message, MESSAGE_METADATA);
  b.startObject(4);
  b.addFieldInt16(SCHEMA_ENDIANNESS, schema.i16(SCHEMA_ENDIANNESS), 0);
  b.addFieldOffset(SCHEMA_FIELDS, fieldsVector, 0);
  if (schemaMetadata !== undefined) b.addFieldOffset(SCHEMA_METADATA, schemaMetadata, 0);
  if (features !== undefined) b.addFieldOffset(SCHEMA_FEATURES, features, 0);
  const projected = b.endObject();
  b.startObject(5);
  b.addFieldInt16(MESSAGE_VERSION, message.i16(MESSAGE_VERSION), 0);
  b.addFieldInt8(1, MessageType.Schema, 0);
  b.addFieldOffset(MESSAGE_HEADER, projected, 0);
  if (messageMetadata !== undefined) b.addFieldOffset(MESSAGE_METADATA, messageMetadata, 0);
  b.finish(b.endObject());
  return Buffer.from(b.asUint8Array());
}

/** A batch message's custom metadata, built again in the new message (rare; usually absent). */
function copyMetadata(b: Builder, message: Table): number | undefined {
  const entries = message.tables(MESSAGE_METADATA, 'custom metadata');
  if (!entries) return undefined;
  const kvs = entries.map((kv) => {
    const key = b.createString(kv.string(KV_KEY, 'key') ?? '');
    const value = b.createString(kv.string(KV_VALUE, 'value') ?? '');
    b.startObject(2);
    b.addFieldOffset(KV_KEY, key, 0);
    b.addFieldOffset(KV_VALUE, value, 0);
    return b.endObject();
  });
  b.startVector(4, kvs.length, 4);
  for (let k = kvs.length - 1; k >= 0; k--) b.addOffset(kvs[k] as number);
  return b.endVector();
}
