import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Pieces } from '../../src/ipc/pieces.js';
import { IpcStreamValidator, IpcValidationError } from '../../src/ipc/stream-validator.js';
import { Fuzzer, type Message } from '../helpers/fuzzer.js';
import { ipcMessages } from '../helpers/raw-client.js';
import { PYTHON, ROOT } from '../setup/python-env.js';

/**
 * Differential test of the DoPut validator against pyarrow's own reader: headers of
 * pyarrow-written streams (every type family) are mutated, and each mutated message is
 * given to both. Whatever pyarrow refuses (`read_message`, and `read_schema` for a
 * schema), the validator must refuse too, or the server would store a flight pyarrow
 * cannot read. (The validator may refuse more: it also checks what Arrow's readers find
 * only later, when they read the values.)
 */
const SEED = Number(process.env.TIERFLIGHT_DIFF_SEED ?? 20261205);
const INPUTS = Number(process.env.TIERFLIGHT_DIFF_INPUTS ?? 100_000);

/**
 * The schema header the fuzz run found accepted but unreadable: a Decimal type
 * table whose `scale` field a flipped bit moved off its 4-byte alignment.
 */
const MISALIGNED_DECIMAL_SCALE =
  '1000000000000a000c000600050008000a000000000104000c000000080008000000040008000000' +
  '0400000003000000700000003c000000040000001cffffff00000107100000001c00000004000000' +
  '00000000030000006465630008000c0004000900080000000a0000000200000050ffffff0000010a' +
  '100000001c0000000400000000000000020000007473000000000600080006000600000000000100' +
  '80ffffff0000010c1400000018000000040000000100000010000000010000006c000000acffffff' +
  'a8ffffff0000010d180000002000000004000000020000005000000014000000040000006974656d' +
  '00000000dcffffffd8ffffff00000105100000001800000004000000000000000100000062000000' +
  '0400040004000000100014000800060007000c00000010001000000000000102100000001c000000' +
  '0400000000000000010000006100000008000c000800070008000000000000014000000000000000';

let dir: string;
const corpus: { name: string; messages: Message[] }[] = [];

beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'tierflight-differential-'));
  execFileSync(PYTHON, [path.join(ROOT, 'test/py/fuzz_corpus.py'), path.join(dir, 'corpus')]);
  for (const file of readdirSync(path.join(dir, 'corpus')).sort())
    corpus.push({ name: file, messages: ipcMessages(readFileSync(path.join(dir, 'corpus', file))) });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/**
 * The validator's refusal of message `at` after the valid messages before it, or
 * undefined; with `cut`, each body is given as pieces, as a large DoPut message arrives.
 */
function ourVerdict(before: readonly Message[], at: Message, cut?: (body: Buffer) => Pieces): string | undefined {
  const v = new IpcStreamValidator();
  const body = (m: Message): Buffer | Pieces => (cut ? cut(m.body) : m.body);
  before.forEach((m, i) => v.message(i, m.header, body(m)));
  try {
    v.message(before.length, at.header, body(at));
    return undefined;
  } catch (err) {
    if (err instanceof IpcValidationError) return err.message;
    throw err;
  }
}

/** pyarrow's verdict on each message: null when it reads it, else its refusal. */
function pyarrowVerdicts(messages: readonly Message[]): (string | null)[] {
  const records: Buffer[] = [];
  for (const m of messages) {
    const padded = (m.header.length + 7) & ~7;
    const prefix = Buffer.alloc(12);
    prefix.writeUInt32LE(8 + padded + m.body.length, 0);
    prefix.writeUInt32LE(0xffffffff, 4);
    prefix.writeInt32LE(padded, 8);
    records.push(prefix, m.header, Buffer.alloc(padded - m.header.length), m.body);
  }
  const file = path.join(dir, `messages-${records.length}.bin`);
  writeFileSync(file, Buffer.concat(records));
  const out = execFileSync(PYTHON, [path.join(ROOT, 'test/py/read_messages.py'), file], {
    maxBuffer: 256 * 1024 * 1024,
  });
  return JSON.parse(out.toString()) as (string | null)[];
}

describe('the DoPut validator and pyarrow agree on refusals', () => {
  it('refuses the schema a fuzz run found stored but unreadable (a misaligned Decimal scale)', () => {
    const header = Buffer.from(MISALIGNED_DECIMAL_SCALE, 'hex');
    const message = { header, body: Buffer.alloc(0) };
    expect(pyarrowVerdicts([message])[0]).toMatch(/Invalid flatbuffers message/);
    expect(ourVerdict([], message)).toMatch(/IPC rule "flatbuffer": Decimal field 1 at 109 is not 4-byte aligned/);
  });

  it(`refuses every mutated header pyarrow refuses (${INPUTS} mutations, seed ${SEED})`, () => {
    const fuzz = new Fuzzer(SEED);
    const cases: { what: string; message: Message; ours: string | undefined }[] = [];
    for (let k = 0; k < INPUTS; k++) {
      const seed = fuzz.pick(corpus);
      const i = fuzz.int(seed.messages.length);
      const original = seed.messages[i] as Message;
      const { header, what } = fuzz.mutateHeader(Buffer.from(original.header));
      const message = { header, body: original.body };
      cases.push({
        what: `${seed.name} message ${i}: ${what}`,
        message,
        ours: ourVerdict(seed.messages.slice(0, i), message),
      });
    }
    const theirs = pyarrowVerdicts(cases.map((c) => c.message));
    expect(theirs).toHaveLength(cases.length);
    const missed = cases
      .map((c, k) => ({ ...c, pyarrow: theirs[k] }))
      .filter((c) => c.pyarrow !== null && c.ours === undefined)
      .map((c) => `${c.what}: pyarrow refuses (${c.pyarrow}), the validator accepts`);
    const refusedByPyarrow = theirs.filter((t) => t !== null).length;
    const refusedByUs = cases.filter((c) => c.ours !== undefined).length;
    process.stdout.write(
      `differential: ${JSON.stringify({ seed: SEED, inputs: INPUTS, refusedByPyarrow, refusedByUs, missed: missed.length })}\n`,
    );
    expect(missed.slice(0, 10)).toEqual([]);
    // The mutations reach both sides' checks, not only the trivial ones.
    expect(refusedByPyarrow).toBeGreaterThan(INPUTS / 10);
  });

  it('gives the same verdict on a body held in pieces (as a large DoPut message arrives) as on one buffer', () => {
    const fuzz = new Fuzzer(SEED + 1);
    /** The body cut at random places, some pieces empty, some a single byte. */
    const cut = (body: Buffer): Pieces => {
      const parts: Buffer[] = [];
      for (let at = 0; at < body.length;) {
        const n = fuzz.int(Math.max(2, Math.min(body.length, 300)));
        parts.push(Buffer.from(body.subarray(at, at + n)));
        at += n;
      }
      return new Pieces(parts);
    };
    let refused = 0;
    let compared = 0;
    for (let k = 0; k < 20_000; k++) {
      const seed = fuzz.pick(corpus);
      const i = fuzz.int(seed.messages.length);
      const original = seed.messages[i] as Message;
      // Half the cases keep the header as is, so valid messages are compared too.
      const header = fuzz.chance(0.5) ? fuzz.mutateHeader(Buffer.from(original.header)).header : original.header;
      const message = { header, body: original.body };
      const whole = ourVerdict(seed.messages.slice(0, i), message);
      expect(ourVerdict(seed.messages.slice(0, i), message, cut)).toBe(whole);
      if (whole !== undefined) refused++;
      if (original.body.length > 0) compared++;
    }
    expect(refused).toBeGreaterThan(1000);
    expect(compared).toBeGreaterThan(5000);
  });
});
