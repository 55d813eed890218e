/**
 * A flatbuffer verifier: every read is bounds- and alignment-checked against the buffer,
 * the way the flatbuffers library's own Verifier checks a buffer before Arrow's C++ and
 * Java readers touch it (alignment relative to the buffer start, non-zero forward
 * offsets, vtables inside the buffer, NUL-terminated strings, a depth and table budget).
 * It reads only what the schema-aware code above it asks for, so an IPC header is walked
 * once. Failures throw FlatbufferError naming the offending offset.
 */

export class FlatbufferError extends Error {}

/** How one field of a table is laid out, for `FlatBuffer.verify`. */
export type FieldSpec =
  /** An inline scalar of `size` bytes, aligned on its size. */
  | { kind: 'scalar'; size: 1 | 2 | 4 | 8 }
  | { kind: 'string' }
  /** A vector of inline scalars or structs. */
  | { kind: 'vector'; elementSize: number }
  | { kind: 'table'; spec: () => TableSpec }
  | { kind: 'tables'; spec: () => TableSpec }
  /** A union's value; its member is chosen by the u8 type field `typeField` (unknown members are not followed). */
  | { kind: 'union'; typeField: number; members: Readonly<Record<number, TableSpec>> };

/** A table's fields by field id. */
export interface TableSpec {
  name: string;
  fields: readonly FieldSpec[];
}

/** Nesting deeper than this is refused (Arrow C++ allows 128 table levels). */
const MAX_DEPTH = 96;
/** Table visits per buffer: bounds the work a header that reuses sub-tables could cause. */
const MAX_TABLES = 100_000;

export class FlatBuffer {
  private tables = 0;

  constructor(readonly buf: Buffer) {}

  private check(pos: number, size: number, align: number, what: string): void {
    if (pos < 0 || pos + size > this.buf.length) {
      throw new FlatbufferError(`${what} at ${pos} (+${size}) lies outside the ${this.buf.length}-byte header`);
    }
    if (align > 1 && pos % align !== 0) throw new FlatbufferError(`${what} at ${pos} is not ${align}-byte aligned`);
  }

  u8(pos: number): number {
    this.check(pos, 1, 1, 'byte');
    return this.buf[pos] as number;
  }
  u16(pos: number): number {
    this.check(pos, 2, 2, 'u16');
    return this.buf.readUInt16LE(pos);
  }
  i16(pos: number): number {
    this.check(pos, 2, 2, 'i16');
    return this.buf.readInt16LE(pos);
  }
  i32(pos: number): number {
    this.check(pos, 4, 4, 'i32');
    return this.buf.readInt32LE(pos);
  }
  u32(pos: number): number {
    this.check(pos, 4, 4, 'u32');
    return this.buf.readUInt32LE(pos);
  }
  /** A signed 64-bit integer that must fit in a JS number (byte counts, lengths, ids). */
  i64(pos: number, what: string): number {
    this.check(pos, 8, 8, 'i64');
    const v = this.buf.readBigInt64LE(pos);
    if (v < BigInt(Number.MIN_SAFE_INTEGER) || v > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new FlatbufferError(`${what} ${v} is out of range`);
    }
    return Number(v);
  }

  /** Follows the u32 forward offset stored at `pos`. */
  private target(pos: number, what: string): number {
    const offset = this.u32(pos);
    if (offset === 0 || offset > 0x7fffffff) throw new FlatbufferError(`${what}: bad offset ${offset} at ${pos}`);
    const to = pos + offset;
    if (to >= this.buf.length) throw new FlatbufferError(`${what}: offset at ${pos} points past the header`);
    return to;
  }

  /** The root table. */
  root(): Table {
    return this.table(this.target(0, 'root table'), 0);
  }

  /**
   * Verifies the whole buffer against the description of its root table, the way the
   * flatbuffers library's generated Verify does before a reader touches anything: every
   * field present, read by Tierflight or not, lies inside the buffer on its alignment, and
   * every table, vector and string it leads to is verified in turn.
   */
  verify(root: TableSpec): void {
    this.verifyTable(this.target(0, 'root table'), root, 0);
  }

  private verifyTable(pos: number, spec: TableSpec, depth: number): void {
    const table = this.table(pos, depth);
    spec.fields.forEach((field, index) => {
      const at = table.fieldAt(index);
      if (at === undefined) return;
      const what = `${spec.name} field ${index}`;
      switch (field.kind) {
        case 'scalar':
          this.check(at, field.size, field.size, what);
          break;
        case 'string':
          this.string(at, what);
          break;
        case 'vector':
          this.vector(at, field.elementSize, what);
          break;
        case 'table':
          this.verifyTable(this.target(at, what), field.spec(), depth + 1);
          break;
        case 'tables': {
          const v = this.vector(at, 4, what);
          const element = field.spec();
          for (let i = 0; i < v.length; i++)
            this.verifyTable(this.target(v.start + 4 * i, `${what}[${i}]`), element, depth + 1);
          break;
        }
        case 'union': {
          const target = this.target(at, what);
          const member = field.members[table.u8(field.typeField)];
          if (member) this.verifyTable(target, member, depth + 1);
          break;
        }
      }
    });
  }

  /** Verifies the table at `pos` (its vtable and inline size) and returns a reader of its fields. */
  table(pos: number, depth: number): Table {
    if (depth > MAX_DEPTH) throw new FlatbufferError(`tables nested deeper than ${MAX_DEPTH}`);
    if (++this.tables > MAX_TABLES) throw new FlatbufferError(`more than ${MAX_TABLES} tables`);
    const vtable = pos - this.i32(pos);
    const vsize = this.u16(vtable);
    if (vsize < 4 || vsize % 2 !== 0) throw new FlatbufferError(`vtable at ${vtable} has a bad size ${vsize}`);
    this.check(vtable, vsize, 2, 'vtable');
    const tsize = this.u16(vtable + 2);
    this.check(pos, Math.max(tsize, 4), 4, 'table');
    // Every field the vtable declares lies inside the table, read here or not (a reader
    // that knows more fields than we read would follow them).
    for (let slot = 4; slot < vsize; slot += 2) {
      const offset = this.u16(vtable + slot);
      if (offset !== 0 && (offset < 4 || offset >= tsize)) {
        throw new FlatbufferError(`table at ${pos} declares a field at ${offset}, outside its ${tsize} bytes`);
      }
    }
    return new Table(this, pos, vtable, vsize, depth);
  }

  /** Position of the first element and the length of the vector the offset at `pos` points to. */
  vector(pos: number, elementSize: number, what: string): { start: number; length: number } {
    const at = this.target(pos, what);
    const length = this.u32(at);
    this.check(at + 4, length * elementSize, 1, `${what} (${length} elements)`);
    return { start: at + 4, length };
  }

  string(pos: number, what: string): string {
    const { start, length } = this.vector(pos, 1, what);
    this.check(start + length, 1, 1, `${what} terminator`);
    if (this.buf[start + length] !== 0) throw new FlatbufferError(`${what} at ${start} is not NUL-terminated`);
    return this.buf.toString('utf8', start, start + length);
  }

  /** A string that must be valid UTF-8 (names). */
  utf8(pos: number, what: string): string {
    const { start, length } = this.vector(pos, 1, what);
    this.check(start + length, 1, 1, `${what} terminator`);
    if (this.buf[start + length] !== 0) throw new FlatbufferError(`${what} at ${start} is not NUL-terminated`);
    const bytes = this.buf.subarray(start, start + length);
    try {
      return UTF8.decode(bytes);
    } catch {
      throw new FlatbufferError(`${what} at ${start} is not valid UTF-8`);
    }
  }

  /** Verifies the table the offset at `pos` points to. */
  child(pos: number, depth: number, what: string): Table {
    return this.table(this.target(pos, what), depth);
  }
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** One verified table: field accessors by field index, with defaults for absent fields. */
export class Table {
  constructor(
    private readonly fb: FlatBuffer,
    readonly pos: number,
    private readonly vtable: number,
    private readonly vsize: number,
    readonly depth: number,
  ) {}

  /** Absolute position of field `index`, or undefined when absent. */
  fieldAt(index: number): number | undefined {
    const slot = 4 + 2 * index;
    if (slot + 2 > this.vsize) return undefined;
    const offset = this.fb.u16(this.vtable + slot);
    return offset === 0 ? undefined : this.pos + offset;
  }

  /** The whole flatbuffer (for reading vector elements found with `vector`). */
  get buffer(): Buffer {
    return this.fb.buf;
  }

  has(index: number): boolean {
    return this.fieldAt(index) !== undefined;
  }

  u8(index: number, fallback = 0): number {
    const p = this.fieldAt(index);
    return p === undefined ? fallback : this.fb.u8(p);
  }
  bool(index: number): boolean {
    return this.u8(index) !== 0;
  }
  i16(index: number, fallback = 0): number {
    const p = this.fieldAt(index);
    return p === undefined ? fallback : this.fb.i16(p);
  }
  i32(index: number, fallback = 0): number {
    const p = this.fieldAt(index);
    return p === undefined ? fallback : this.fb.i32(p);
  }
  i64(index: number, what: string, fallback = 0): number {
    const p = this.fieldAt(index);
    return p === undefined ? fallback : this.fb.i64(p, what);
  }

  table(index: number, what: string): Table | undefined {
    const p = this.fieldAt(index);
    return p === undefined ? undefined : this.fb.child(p, this.depth + 1, what);
  }

  string(index: number, what: string): string | undefined {
    const p = this.fieldAt(index);
    return p === undefined ? undefined : this.fb.string(p, what);
  }

  utf8(index: number, what: string): string | undefined {
    const p = this.fieldAt(index);
    return p === undefined ? undefined : this.fb.utf8(p, what);
  }

  /** A vector of inline structs or scalars: where its elements start, and how many. */
  vector(index: number, elementSize: number, what: string): { start: number; length: number } | undefined {
    const p = this.fieldAt(index);
    return p === undefined ? undefined : this.fb.vector(p, elementSize, what);
  }

  /** A vector of tables, each verified. */
  tables(index: number, what: string): Table[] | undefined {
    const v = this.vector(index, 4, what);
    if (!v) return undefined;
    const out: Table[] = [];
    for (let i = 0; i < v.length; i++) out.push(this.fb.child(v.start + 4 * i, this.depth + 1, `${what}[${i}]`));
    return out;
  }

  /** A vector of strings, each verified. */
  strings(index: number, what: string): string[] | undefined {
    const v = this.vector(index, 4, what);
    if (!v) return undefined;
    const out: string[] = [];
    for (let i = 0; i < v.length; i++) out.push(this.fb.string(v.start + 4 * i, `${what}[${i}]`));
    return out;
  }
}
