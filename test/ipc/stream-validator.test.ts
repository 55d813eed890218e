import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IpcStreamValidator, IpcValidationError } from '../../src/ipc/stream-validator.js';
import { ipcMessages } from '../helpers/raw-client.js';
import { PYTHON, ROOT } from '../setup/python-env.js';

type Message = { header: Buffer; body: Buffer };

/**
 * One deterministic case per rule of the IPC validator, on streams pyarrow wrote (the
 * fuzz test's seed streams), each changed in exactly one place. The fuzz test covers the
 * combinations; these name what each rule refuses.
 */
let dir: string;
const streams = new Map<string, Message[]>();

beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'tierflight-validator-'));
  execFileSync(PYTHON, [path.join(ROOT, 'test/py/fuzz_corpus.py'), dir]);
  for (const file of readdirSync(dir))
    streams.set(file.replace('.arrows', ''), ipcMessages(readFileSync(path.join(dir, file))));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A copy of a seed stream's messages, safe to change. */
function stream(name: string): Message[] {
  const messages = streams.get(name);
  if (!messages) throw new Error(`no seed stream ${name}`);
  return messages.map((m) => ({ header: Buffer.from(m.header), body: Buffer.from(m.body) }));
}

/** Validates a whole stream; returns the error, or undefined when every message passes. */
function validate(messages: Message[]): IpcValidationError | undefined {
  const v = new IpcStreamValidator();
  try {
    messages.forEach((m, i) => v.message(i, m.header, m.body));
    v.finish(messages.length);
    return undefined;
  } catch (err) {
    if (err instanceof IpcValidationError) return err;
    throw err;
  }
}

// A flatbuffer locator written independently of the code under test: field `index` of the
// table at `table`, and the target of the offset at `pos`.
function field(buf: Buffer, table: number, index: number): number {
  const vtable = table - buf.readInt32LE(table);
  const offset = 4 + 2 * index < buf.readUInt16LE(vtable) ? buf.readUInt16LE(vtable + 4 + 2 * index) : 0;
  if (offset === 0) throw new Error(`field ${index} is absent`);
  return table + offset;
}
const deref = (buf: Buffer, pos: number): number => pos + buf.readUInt32LE(pos);
/** The Message's header table (Schema, RecordBatch or DictionaryBatch). */
const headerTable = (buf: Buffer): number => deref(buf, field(buf, buf.readUInt32LE(0), 2));
/** A RecordBatch table: the message's own, or a DictionaryBatch's data. */
const batchTable = (buf: Buffer, dictionary = false): number =>
  dictionary ? deref(buf, field(buf, headerTable(buf), 1)) : headerTable(buf);
/** Start of a vector field's elements, after its length. */
const vector = (buf: Buffer, table: number, index: number): number => deref(buf, field(buf, table, index)) + 4;

describe('IPC stream validator', () => {
  it('accepts every seed stream pyarrow wrote', () => {
    // The corpus is there (a loop over nothing would pass).
    expect(streams.size).toBe(9);
    expect([...streams.keys()]).toEqual(expect.arrayContaining(['primitive', 'strings', 'nested', 'deltas']));
    for (const name of streams.keys()) expect({ name, error: validate(stream(name))?.message }).toEqual({ name });
  });

  const cases: [string, string, (ms: Message[]) => Message[], number, string, RegExp][] = [
    [
      'a header cut short',
      'primitive',
      (ms) => ((ms[1]!.header = ms[1]!.header.subarray(0, 40)), ms),
      1,
      'flatbuffer',
      /outside/,
    ],
    ['a batch before the schema', 'primitive', (ms) => ms.slice(1), 0, 'schema-first', /before the schema/],
    ['a second schema', 'primitive', (ms) => [ms[0]!, ms[0]!, ...ms.slice(1)], 1, 'schema-once', /second schema/],
    [
      'a body shorter than declared',
      'primitive',
      (ms) => ((ms[1]!.body = ms[1]!.body.subarray(8)), ms),
      1,
      'body-length',
      /declares/,
    ],
    [
      'metadata version V3',
      'primitive',
      (ms) => (ms[1]!.header.writeInt16LE(2, field(ms[1]!.header, ms[1]!.header.readUInt32LE(0), 0)), ms),
      1,
      'version',
      /metadata version 3 is not supported/,
    ],
    [
      'a buffer past the body',
      'primitive',
      (ms) => (ms[1]!.header.writeBigInt64LE(1n << 20n, vector(ms[1]!.header, batchTable(ms[1]!.header), 2)), ms),
      1,
      'buffers',
      /lies outside the \d+-byte body/,
    ],
    [
      'a buffer not on 8 bytes',
      'primitive',
      (ms) => (ms[1]!.header.writeBigInt64LE(4n, vector(ms[1]!.header, batchTable(ms[1]!.header), 2)), ms),
      1,
      'buffers',
      /not on 8 bytes/,
    ],
    [
      'a missing field node',
      'primitive',
      (ms) => {
        const h = ms[1]!.header;
        const at = vector(h, batchTable(h), 1) - 4;
        h.writeUInt32LE(h.readUInt32LE(at) - 1, at);
        return ms;
      },
      1,
      'field-nodes',
      /field nodes/,
    ],
    [
      'a column shorter than its batch',
      'primitive',
      // Field node 1 is column "f" (no nulls): one value where the batch has twelve.
      (ms) => (ms[1]!.header.writeBigInt64LE(1n, vector(ms[1]!.header, batchTable(ms[1]!.header), 1) + 16), ms),
      1,
      'lengths',
      /column "f" has 1 values in a record batch of 12/,
    ],
    [
      'nulls without room in the validity bitmap',
      'primitive',
      (ms) => (ms[1]!.header.writeBigInt64LE(0n, vector(ms[1]!.header, batchTable(ms[1]!.header), 2) + 8), ms),
      1,
      'buffers',
      /validity bitmap has 0 bytes/,
    ],
    [
      'an integer of 33 bits in the schema',
      'primitive',
      (ms) => {
        const h = ms[0]!.header;
        const firstField = deref(h, vector(h, headerTable(h), 1));
        h.writeInt32LE(33, field(h, deref(h, field(h, firstField, 3)), 0));
        return ms;
      },
      0,
      'schema',
      /integer bit width 33/,
    ],
    [
      // The second dictionary (id 1): a builder leaves the first one's id 0 out, as a default.
      'a dictionary the schema does not declare',
      'dictionaries',
      (ms) => (ms[2]!.header.writeBigInt64LE(99n, field(ms[2]!.header, headerTable(ms[2]!.header), 0)), ms),
      2,
      'dictionary-id',
      /dictionary id 99 is not declared/,
    ],
    [
      'a batch before its dictionaries',
      'dictionaries',
      (ms) => [ms[0]!, ...ms.slice(3)],
      1,
      'dictionaries',
      /before the dictionaries/,
    ],
    [
      'a delta before its base',
      'deltas',
      (ms) => [ms[0]!, ms[3]!, ms[1]!, ms[2]!, ...ms.slice(4)],
      1,
      'dictionary-delta',
      /before its base/,
    ],
    [
      'dictionary strings that are not UTF-8',
      'deltas',
      (ms) => {
        const body = ms[1]!.body;
        body[body.indexOf('w0')] = 0xff;
        return ms;
      },
      1,
      'utf8',
      /not valid UTF-8/,
    ],
    [
      'an unknown compression codec',
      'compressed-zstd',
      (ms) => (
        ms[1]!.header.writeUInt8(
          7,
          field(ms[1]!.header, deref(ms[1]!.header, field(ms[1]!.header, batchTable(ms[1]!.header), 3)), 0),
        ),
        ms
      ),
      1,
      'compression',
      /unknown compression codec 7/,
    ],
    [
      'ZSTD buffers declared as LZ4',
      'compressed-zstd',
      (ms) => (
        ms[1]!.header.writeUInt8(
          0,
          field(ms[1]!.header, deref(ms[1]!.header, field(ms[1]!.header, batchTable(ms[1]!.header), 3)), 0),
        ),
        ms
      ),
      1,
      'compression',
      /not an LZ4 frame/,
    ],
    [
      'a stream that ends after some of its dictionaries',
      'dictionaries',
      (ms) => ms.slice(0, 2),
      2,
      'dictionaries',
      /ended after some dictionaries/,
    ],
  ];

  it.each(cases)('refuses %s', (_name, seed, change, index, rule, message) => {
    const err = validate(change(stream(seed)));
    expect(err).toBeInstanceOf(IpcValidationError);
    expect({ index: err?.index, rule: err?.rule }).toEqual({ index, rule });
    expect(err?.message).toMatch(message);
  });
});
