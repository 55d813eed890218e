import type { Table } from './flatbuffer-verifier.js';

/**
 * The parts of an Arrow `Schema` flatbuffer that decide how a record batch must look: each
 * field's buffer layout, its children and its dictionary. Parsing applies the same rules
 * Arrow's readers apply when they turn the schema into types (known type ids, valid bit
 * widths, units and precisions, the right number of children), so a schema accepted here
 * is one they accept too.
 */

/** How a field's values are laid out in a record batch: which buffers, in which order. */
export type Layout =
  | { kind: 'null' }
  /** validity bitmap, then `bits` per value (1 for booleans) */
  | { kind: 'fixed'; bits: number }
  /** validity, offsets, data */
  | { kind: 'binary'; offsetBytes: 4 | 8 }
  /** validity, 16-byte views, then the batch's variadic count of data buffers */
  | { kind: 'view' }
  /** validity, offsets; one child (list, large list, map) */
  | { kind: 'list'; offsetBytes: 4 | 8 }
  /** validity, offsets, sizes; one child */
  | { kind: 'list-view'; offsetBytes: 4 | 8 }
  /** validity; one child of `size` values per slot */
  | { kind: 'fixed-list'; size: number }
  | { kind: 'struct' }
  /** type ids (and offsets when dense); no validity from metadata V5 on */
  | { kind: 'union'; dense: boolean }
  /** no buffers; run ends and values children */
  | { kind: 'run-end' };

export interface FieldModel {
  name: string;
  nullable: boolean;
  /** Type name for messages (`int32`, `list`, ...). */
  type: string;
  layout: Layout;
  children: FieldModel[];
  /** A dictionary-encoded field: batches carry indices (`layout`), the dictionary carries `value`. */
  dictionary?: { id: number; value: FieldModel };
}

export interface SchemaModel {
  fields: FieldModel[];
  /**
   * The schema's `endianness` is Big: the values in the bodies (offsets, run ends) are
   * big-endian. They are read that way and stored and replayed as received, never swapped.
   */
  bigEndian: boolean;
  /** Every dictionary the schema declares, by id, with its value field. */
  dictionaries: Map<number, FieldModel>;
}

// Field numbers from Arrow's Schema.fbs.
const SCHEMA_ENDIANNESS = 0;
const SCHEMA_FIELDS = 1;
const SCHEMA_METADATA = 2;
const SCHEMA_FEATURES = 3;
const FIELD_NAME = 0;
const FIELD_NULLABLE = 1;
const FIELD_TYPE_TYPE = 2;
const FIELD_TYPE = 3;
const FIELD_DICTIONARY = 4;
const FIELD_CHILDREN = 5;
const FIELD_METADATA = 6;
const KV_KEY = 0;
const KV_VALUE = 1;
const DICT_ID = 0;
const DICT_INDEX_TYPE = 1;
const DICT_KIND = 3;

/** Thrown for a schema that Arrow's readers would refuse; `rule` names the check. */
export class SchemaRuleError extends Error {}

export function parseSchema(schema: Table): SchemaModel {
  const endianness = schema.i16(SCHEMA_ENDIANNESS);
  if (endianness !== 0 && endianness !== 1) throw new SchemaRuleError(`unknown endianness ${endianness}`);
  checkMetadata(schema, SCHEMA_METADATA, 'schema custom_metadata');
  schema.vector(SCHEMA_FEATURES, 8, 'schema features');
  const fields = schema.tables(SCHEMA_FIELDS, 'schema fields');
  if (!fields) throw new SchemaRuleError('the schema has no fields vector');
  const dictionaries = new Map<number, FieldModel>();
  return {
    fields: fields.map((f, i) => parseField(f, `field ${i}`, dictionaries)),
    dictionaries,
    bigEndian: endianness === 1,
  };
}

function checkMetadata(table: Table, index: number, what: string): void {
  const entries = table.tables(index, what);
  entries?.forEach((kv, i) => {
    if (kv.string(KV_KEY, `${what}[${i}] key`) === undefined) throw new SchemaRuleError(`${what}[${i}] has no key`);
    if (kv.string(KV_VALUE, `${what}[${i}] value`) === undefined)
      throw new SchemaRuleError(`${what}[${i}] has no value`);
  });
}

function parseField(f: Table, where: string, dictionaries: Map<number, FieldModel>): FieldModel {
  const name = f.utf8(FIELD_NAME, `${where} name`) ?? '';
  const at = `${where} ("${name.slice(0, 64)}")`;
  checkMetadata(f, FIELD_METADATA, `${at} custom_metadata`);
  const childTables = f.tables(FIELD_CHILDREN, `${at} children`);
  if (!childTables) throw new SchemaRuleError(`${at} has no children vector`);
  const children = childTables.map((c, i) => parseField(c, `${at} child ${i}`, dictionaries));
  const typeId = f.u8(FIELD_TYPE_TYPE);
  const typeTable = f.table(FIELD_TYPE, `${at} type`);
  if (typeId === 0 || !typeTable) throw new SchemaRuleError(`${at} has no type`);
  const { type, layout } = typeOf(typeId, typeTable, children, at);
  const field: FieldModel = { name, nullable: f.bool(FIELD_NULLABLE), type, layout, children };
  const encoding = f.table(FIELD_DICTIONARY, `${at} dictionary`);
  if (!encoding) return field;

  const id = encoding.i64(DICT_ID, `${at} dictionary id`);
  const indexType = encoding.table(DICT_INDEX_TYPE, `${at} dictionary indexType`);
  if (!indexType) throw new SchemaRuleError(`${at} is dictionary-encoded without an indexType`);
  const bits = intBits(indexType, `${at} dictionary index`);
  if (encoding.i16(DICT_KIND) !== 0) throw new SchemaRuleError(`${at} has an unknown dictionaryKind`);
  // Several fields may share one dictionary (one id) when its values have the same type.
  const shared = dictionaries.get(id);
  if (shared && !sameValueType(shared, field)) {
    throw new SchemaRuleError(
      `dictionary id ${id} is declared with values of type ${describe(shared)} and again by ${at} with ${describe(field)}`,
    );
  }
  if (!shared) dictionaries.set(id, field);
  return {
    name,
    nullable: field.nullable,
    type: `dictionary<int${bits}, ${type}>`,
    layout: { kind: 'fixed', bits },
    children: [],
    dictionary: { id, value: field },
  };
}

/** Whether two dictionaries' value fields have the same type (names aside), children and nested dictionaries included. */
function sameValueType(a: FieldModel, b: FieldModel): boolean {
  if (a.type !== b.type || JSON.stringify(a.layout) !== JSON.stringify(b.layout)) return false;
  if (a.children.length !== b.children.length) return false;
  if ((a.dictionary === undefined) !== (b.dictionary === undefined)) return false;
  if (a.dictionary && b.dictionary && a.dictionary.id !== b.dictionary.id) return false;
  return a.children.every((c, i) => {
    const d = b.children[i] as FieldModel;
    return c.name === d.name && c.nullable === d.nullable && sameValueType(c, d);
  });
}

/** A type for messages: `list<int32>`, `struct<utf8, int64>`. */
function describe(f: FieldModel): string {
  return f.children.length === 0 ? f.type : `${f.type}<${f.children.map(describe).join(', ')}>`;
}

function intBits(t: Table, at: string): number {
  const bits = t.i32(0);
  if (bits !== 8 && bits !== 16 && bits !== 32 && bits !== 64) {
    throw new SchemaRuleError(`${at}: integer bit width ${bits} is not 8, 16, 32 or 64`);
  }
  return bits;
}

function unit(t: Table, index: number, fallback: number, max: number, at: string, what: string): number {
  const u = t.i16(index, fallback);
  if (u < 0 || u > max) throw new SchemaRuleError(`${at}: unknown ${what} unit ${u}`);
  return u;
}

const TIME_UNITS = ['s', 'ms', 'us', 'ns'];
const MAX_BYTE_WIDTH = Math.floor(0x7fffffff / 8);

const DECIMAL_PRECISION: Record<number, number> = { 32: 9, 64: 18, 128: 38, 256: 76 };

/** The type's name and layout; throws for parameters Arrow's readers refuse. */
function typeOf(id: number, t: Table, children: FieldModel[], at: string): { type: string; layout: Layout } {
  const childCount = (n: number, type: string): void => {
    if (children.length !== n) {
      throw new SchemaRuleError(`${at}: a ${type} field has ${children.length} children, it needs ${n}`);
    }
  };
  const leaf = (type: string, layout: Layout): { type: string; layout: Layout } => {
    childCount(0, type);
    return { type, layout };
  };
  switch (id) {
    case 1:
      return leaf('null', { kind: 'null' });
    case 2: {
      const bits = intBits(t, at);
      return leaf(`${t.bool(1) ? '' : 'u'}int${bits}`, { kind: 'fixed', bits });
    }
    case 3: {
      const precision = t.i16(0);
      if (precision < 0 || precision > 2)
        throw new SchemaRuleError(`${at}: unknown floating point precision ${precision}`);
      const bits = [16, 32, 64][precision] as number;
      return leaf(`float${bits}`, { kind: 'fixed', bits });
    }
    case 4:
      return leaf('binary', { kind: 'binary', offsetBytes: 4 });
    case 5:
      return leaf('utf8', { kind: 'binary', offsetBytes: 4 });
    case 6:
      return leaf('bool', { kind: 'fixed', bits: 1 });
    case 7: {
      const bits = t.i32(2, 128);
      const max = DECIMAL_PRECISION[bits];
      if (max === undefined) throw new SchemaRuleError(`${at}: decimal bit width ${bits} is not 32, 64, 128 or 256`);
      const precision = t.i32(0);
      if (precision < 1 || precision > max) {
        throw new SchemaRuleError(`${at}: decimal${bits} precision ${precision} is outside 1..${max}`);
      }
      return leaf(`decimal${bits}(${precision}, ${t.i32(1)})`, { kind: 'fixed', bits });
    }
    case 8: {
      const u = unit(t, 0, 1, 1, at, 'date');
      return leaf(u === 0 ? 'date32' : 'date64', { kind: 'fixed', bits: u === 0 ? 32 : 64 });
    }
    case 9: {
      const u = unit(t, 0, 1, 3, at, 'time');
      const bits = t.i32(1, 32);
      if (bits !== (u <= 1 ? 32 : 64)) throw new SchemaRuleError(`${at}: time unit ${u} with bit width ${bits}`);
      return leaf(`time${bits}[${TIME_UNITS[u]}]`, { kind: 'fixed', bits });
    }
    case 10: {
      const u = unit(t, 0, 0, 3, at, 'timestamp');
      const zone = t.string(1, `${at} timezone`);
      return leaf(`timestamp[${TIME_UNITS[u]}${zone ? `, ${zone}` : ''}]`, { kind: 'fixed', bits: 64 });
    }
    case 11: {
      const u = unit(t, 0, 0, 2, at, 'interval');
      return leaf(`interval[${u}]`, { kind: 'fixed', bits: [32, 64, 128][u] as number });
    }
    case 12:
      childCount(1, 'list');
      return { type: 'list', layout: { kind: 'list', offsetBytes: 4 } };
    case 13:
      return { type: 'struct', layout: { kind: 'struct' } };
    case 14: {
      const layout = unionLayout(t, children, at);
      const ids = t.vector(1, 4, `${at} union typeIds`);
      const codes = ids ? Array.from({ length: ids.length }, (_, i) => t.buffer.readInt32LE(ids.start + 4 * i)) : [];
      return {
        type: `${layout.kind === 'union' && layout.dense ? 'dense' : 'sparse'}_union[${codes.join(',')}]`,
        layout,
      };
    }
    case 15: {
      const width = t.i32(0);
      // Readers compute the width in bits as a 32-bit integer.
      if (width < 0 || width > MAX_BYTE_WIDTH)
        throw new SchemaRuleError(`${at}: fixed size binary width ${width} is outside 0..${MAX_BYTE_WIDTH}`);
      return leaf(`fixed_size_binary[${width}]`, { kind: 'fixed', bits: width * 8 });
    }
    case 16: {
      const size = t.i32(0);
      if (size < 0) throw new SchemaRuleError(`${at}: fixed size list size ${size} is negative`);
      childCount(1, 'fixed size list');
      return { type: `fixed_size_list[${size}]`, layout: { kind: 'fixed-list', size } };
    }
    case 17: {
      childCount(1, 'map');
      const entries = children[0] as FieldModel;
      if (entries.layout.kind !== 'struct' || entries.dictionary || entries.children.length !== 2) {
        throw new SchemaRuleError(`${at}: a map's child must be a struct of key and value`);
      }
      if (entries.nullable) throw new SchemaRuleError(`${at}: a map's key-value struct must not be nullable`);
      if ((entries.children[0] as FieldModel).nullable)
        throw new SchemaRuleError(`${at}: a map's keys must not be nullable`);
      return { type: t.bool(0) ? 'map[sorted]' : 'map', layout: { kind: 'list', offsetBytes: 4 } };
    }
    case 18:
      return leaf(`duration[${TIME_UNITS[unit(t, 0, 1, 3, at, 'duration')]}]`, { kind: 'fixed', bits: 64 });
    case 19:
      return leaf('large_binary', { kind: 'binary', offsetBytes: 8 });
    case 20:
      return leaf('large_utf8', { kind: 'binary', offsetBytes: 8 });
    case 21:
      childCount(1, 'large list');
      return { type: 'large_list', layout: { kind: 'list', offsetBytes: 8 } };
    case 22: {
      childCount(2, 'run-end encoded');
      const runEnds = children[0] as FieldModel;
      const ok = !runEnds.dictionary && ['int16', 'int32', 'int64'].includes(runEnds.type);
      if (!ok) throw new SchemaRuleError(`${at}: run ends must be int16, int32 or int64, not ${runEnds.type}`);
      return { type: 'run_end_encoded', layout: { kind: 'run-end' } };
    }
    case 23:
      return leaf('binary_view', { kind: 'view' });
    case 24:
      return leaf('utf8_view', { kind: 'view' });
    case 25:
      childCount(1, 'list view');
      return { type: 'list_view', layout: { kind: 'list-view', offsetBytes: 4 } };
    case 26:
      childCount(1, 'large list view');
      return { type: 'large_list_view', layout: { kind: 'list-view', offsetBytes: 8 } };
    default:
      throw new SchemaRuleError(`${at}: unknown type id ${id}`);
  }
}

function unionLayout(t: Table, children: FieldModel[], at: string): Layout {
  const mode = t.i16(0);
  if (mode !== 0 && mode !== 1) throw new SchemaRuleError(`${at}: unknown union mode ${mode}`);
  if (children.length > 128) throw new SchemaRuleError(`${at}: a union has at most 128 children`);
  const ids = t.vector(1, 4, `${at} union typeIds`);
  if (ids) {
    if (ids.length !== children.length) {
      throw new SchemaRuleError(`${at}: ${ids.length} union type ids for ${children.length} children`);
    }
    const seen = new Set<number>();
    for (let i = 0; i < ids.length; i++) {
      const code = t.buffer.readInt32LE(ids.start + 4 * i);
      if (code < 0 || code > 127 || seen.has(code)) {
        throw new SchemaRuleError(`${at}: union type id ${code} is outside 0..127 or repeated`);
      }
      seen.add(code);
    }
  }
  return { kind: 'union', dense: mode === 1 };
}
