import type { FieldSpec, TableSpec } from './flatbuffer-verifier.js';

/**
 * The tables of Arrow's `Message.fbs` and `Schema.fbs`, field by field (index = field id),
 * as the flatbuffers verifier walks them: every field a reader could follow is checked,
 * whether Tierflight reads it or not, exactly as Arrow's C++ and Java readers verify a
 * header before they touch it. Tensor messages are not described: the validator refuses
 * them whatever they hold.
 */

const bool: FieldSpec = { kind: 'scalar', size: 1 };
const byte: FieldSpec = { kind: 'scalar', size: 1 };
const short: FieldSpec = { kind: 'scalar', size: 2 };
const int: FieldSpec = { kind: 'scalar', size: 4 };
const long: FieldSpec = { kind: 'scalar', size: 8 };
const string: FieldSpec = { kind: 'string' };

const empty = (name: string): TableSpec => ({ name, fields: [] });

const KEY_VALUE: TableSpec = { name: 'KeyValue', fields: [string, string] };
const metadata: FieldSpec = { kind: 'tables', spec: () => KEY_VALUE };

const INT: TableSpec = { name: 'Int', fields: [int, bool] };

/** The members of the `Type` union, by type id. */
const TYPES: Readonly<Record<number, TableSpec>> = {
  1: empty('Null'),
  2: INT,
  3: { name: 'FloatingPoint', fields: [short] },
  4: empty('Binary'),
  5: empty('Utf8'),
  6: empty('Bool'),
  7: { name: 'Decimal', fields: [int, int, int] },
  8: { name: 'Date', fields: [short] },
  9: { name: 'Time', fields: [short, int] },
  10: { name: 'Timestamp', fields: [short, string] },
  11: { name: 'Interval', fields: [short] },
  12: empty('List'),
  13: empty('Struct_'),
  14: { name: 'Union', fields: [short, { kind: 'vector', elementSize: 4 }] },
  15: { name: 'FixedSizeBinary', fields: [int] },
  16: { name: 'FixedSizeList', fields: [int] },
  17: { name: 'Map', fields: [bool] },
  18: { name: 'Duration', fields: [short] },
  19: empty('LargeBinary'),
  20: empty('LargeUtf8'),
  21: empty('LargeList'),
  22: empty('RunEndEncoded'),
  23: empty('BinaryView'),
  24: empty('Utf8View'),
  25: empty('ListView'),
  26: empty('LargeListView'),
};

const DICTIONARY_ENCODING: TableSpec = {
  name: 'DictionaryEncoding',
  fields: [long, { kind: 'table', spec: () => INT }, bool, short],
};

const FIELD: TableSpec = {
  name: 'Field',
  fields: [
    string, // name
    bool, // nullable
    byte, // type_type
    { kind: 'union', typeField: 2, members: TYPES }, // type
    { kind: 'table', spec: () => DICTIONARY_ENCODING }, // dictionary
    { kind: 'tables', spec: () => FIELD }, // children
    metadata, // custom_metadata
  ],
};

const SCHEMA: TableSpec = {
  name: 'Schema',
  fields: [
    short, // endianness
    { kind: 'tables', spec: () => FIELD }, // fields
    metadata, // custom_metadata
    { kind: 'vector', elementSize: 8 }, // features
  ],
};

const BODY_COMPRESSION: TableSpec = { name: 'BodyCompression', fields: [byte, byte] };

const RECORD_BATCH: TableSpec = {
  name: 'RecordBatch',
  fields: [
    long, // length
    { kind: 'vector', elementSize: 16 }, // nodes (FieldNode structs)
    { kind: 'vector', elementSize: 16 }, // buffers (Buffer structs)
    { kind: 'table', spec: () => BODY_COMPRESSION }, // compression
    { kind: 'vector', elementSize: 8 }, // variadicBufferCounts
  ],
};

const DICTIONARY_BATCH: TableSpec = {
  name: 'DictionaryBatch',
  fields: [long, { kind: 'table', spec: () => RECORD_BATCH }, bool],
};

/** The root table of every IPC message header. */
export const MESSAGE: TableSpec = {
  name: 'Message',
  fields: [
    short, // version
    byte, // header_type
    { kind: 'union', typeField: 1, members: { 1: SCHEMA, 2: DICTIONARY_BATCH, 3: RECORD_BATCH } }, // header
    long, // bodyLength
    metadata, // custom_metadata
  ],
};
