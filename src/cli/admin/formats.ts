import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { parse } from 'csv-parse';
import { stringify } from 'csv-stringify/sync';
import { encapsulatedMessages, type IpcMessage } from '../../ipc/ipc-stream.js';
import { UsageError } from './connect.js';

/** Rows per record batch when a CSV file is put. */
const CSV_BATCH_ROWS = 65_536;

type ColumnType = 'int64' | 'float64' | 'bool' | 'utf8';

const INT = /^-?\d+$/;
const FLOAT = /^-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$|^-?(inf|Infinity|nan|NaN)$/;

/** What the first rows say a column is: int64, float64, bool or utf8 (as pyarrow.csv infers). */
function inferType(values: readonly string[]): ColumnType {
  const present = values.filter((v) => v !== '');
  if (present.length === 0) return 'utf8';
  if (present.every((v) => INT.test(v) && BigInt.asIntN(64, BigInt(v)) === BigInt(v))) return 'int64';
  if (present.every((v) => FLOAT.test(v))) return 'float64';
  if (present.every((v) => /^(true|false)$/i.test(v))) return 'bool';
  return 'utf8';
}

/**
 * A CSV file (header row first) as Arrow IPC messages, one record batch per 65,536 rows,
 * read as a stream with csv-parse so a large file is never held whole. Column types come
 * from the first batch (int64, float64, bool, else utf8; an empty field is null except in
 * text columns); a later value that does not fit its column is an error naming its row.
 */
export async function* csvMessages(file: string, input?: Readable): AsyncGenerator<IpcMessage> {
  const arrow = await import('apache-arrow');
  const parser = (input ?? createReadStream(file)).pipe(parse({ relax_column_count: false, bom: true, info: true }));
  let header: string[] | undefined;
  let types: ColumnType[] | undefined;
  let rows: string[][] = [];
  /** The file line each row of the batch ends on, for errors. */
  let lines: number[] = [];
  let first = true;
  const flush = function* (): Generator<IpcMessage> {
    if (!header || rows.length === 0) return;
    types ??= header.map((_, c) => inferType(rows.map((r) => r[c] ?? '')));
    const columns: Record<string, unknown> = {};
    const fields = header.map((name, c) => {
      const type = types?.[c] ?? 'utf8';
      const values = rows.map((r, i) => convert(r[c] ?? '', type, lines[i] ?? 0, name));
      const arrowType =
        type === 'int64'
          ? new arrow.Int64()
          : type === 'float64'
            ? new arrow.Float64()
            : type === 'bool'
              ? new arrow.Bool()
              : new arrow.Utf8();
      columns[name] = arrow.vectorFromArray(values, arrowType);
      return new arrow.Field(name, arrowType, true);
    });
    const batch = new arrow.Table(
      new arrow.Schema(fields),
      columns as Record<string, InstanceType<typeof arrow.Vector>>,
    );
    const messages = encapsulatedMessages(arrow.tableToIPC(batch, 'stream'));
    yield* first ? messages : messages.slice(1); // the schema once
    first = false;
    rows = [];
    lines = [];
  };
  for await (const { record, info } of parser as AsyncIterable<{ record: string[]; info: { lines: number } }>) {
    if (!header) {
      header = record;
      continue;
    }
    rows.push(record);
    lines.push(info.lines);
    if (rows.length >= CSV_BATCH_ROWS) yield* flush();
  }
  if (!header) throw new UsageError(`${file} is empty: a CSV file needs a header row`);
  yield* flush();
  if (first) {
    // A header and no rows: a flight with a schema (every column text) and no batch.
    const fields = header.map((name) => new arrow.Field(name, new arrow.Utf8(), true));
    yield* encapsulatedMessages(arrow.tableToIPC(new arrow.Table(new arrow.Schema(fields)), 'stream'));
  }
}

function convert(value: string, type: ColumnType, line: number, column: string): unknown {
  if (type === 'utf8') return value;
  if (value === '') return null;
  const bad = (): never => {
    throw new UsageError(`CSV line ${line}, column "${column}": "${value}" is not ${type} like the rows before it`);
  };
  if (type === 'int64') return INT.test(value) ? BigInt(value) : bad();
  if (type === 'float64') return FLOAT.test(value) ? Number(value.replace(/^(-?)inf$/i, '$1Infinity')) : bad();
  return /^true$/i.test(value) ? true : /^false$/i.test(value) ? false : bad();
}

/** A Parquet file's rows as Arrow IPC messages (parquet-wasm: the Rust Parquet reader, compiled to WebAssembly). */
export async function parquetMessages(bytes: Uint8Array): Promise<IpcMessage[]> {
  const { readParquet } = await import('parquet-wasm');
  return encapsulatedMessages(readParquet(bytes).intoIPCStream());
}

/** An Arrow IPC stream as CSV with a header row (csv-stringify); nulls are empty fields. */
export async function ipcToCsv(stream: Buffer): Promise<string> {
  const arrow = await import('apache-arrow');
  const table = arrow.tableFromIPC(stream);
  const names = table.schema.fields.map((f) => f.name);
  const records: unknown[][] = [];
  for (const row of table) {
    const values = row.toArray() as unknown[];
    records.push(values.map((v) => (v === null || v === undefined ? '' : typeof v === 'bigint' ? v.toString() : v)));
  }
  return stringify([names, ...records], { cast: { boolean: (b) => (b ? 'true' : 'false') } });
}
