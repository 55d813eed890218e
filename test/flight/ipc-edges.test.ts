import { flightPath } from '../../src/core/path.js';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FlightCallError, FlightClient, FlightStatus } from '../../src/client/flight-client.js';
import { IpcStreamValidator, IpcValidationError } from '../../src/ipc/stream-validator.js';
import { BatchSplitter } from '../../src/flight/batch-splitter.js';
import { silentLogger } from '../../src/core/log.js';
import {
  batchMessage,
  dictionaryMessage,
  schemaMessage,
  type Column,
  type IpcMessage,
} from '../helpers/ipc-builder.js';
import { runPyClient } from '../helpers/python.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

/**
 * Valid Arrow IPC that pyarrow never writes, so the suite builds it: big-endian streams
 * (the schema says `endianness: Big`, values in the bodies are big-endian) and several
 * fields sharing one dictionary. Tierflight validates them in their own terms, stores and
 * replays the bytes as received, and pyarrow reads them back.
 */
const WORDS = ['alpha', 'beta', 'gamma', ''];

function bigEndianStream(bigEndian = true): IpcMessage[] {
  const columns = (offset: number): Column[] => [
    { name: 'i', type: 'int32', values: [1 + offset, null, -70000, 2 ** 30] },
    { name: 'f', type: 'float64', values: [0.5, -1e300, 3.25, offset] },
    { name: 's', type: 'utf8', values: ['héllo', null, '', 'x'.repeat(300 + offset)] },
    { name: 'l', type: 'list<int64>', values: [[1n, 2n], [], [2n ** 40n], [-5n, 6n, 7n]] },
    { name: 'd', type: 'dictionary', id: 0, bits: 16, values: [3, 2, 1, 0] },
  ];
  return [
    schemaMessage(columns(0), bigEndian),
    dictionaryMessage(0, WORDS, bigEndian),
    batchMessage(columns(0), bigEndian),
    batchMessage(columns(1), bigEndian),
  ];
}

/** The rows pyarrow should decode from `bigEndianStream`. */
function expectedRows(): Record<string, unknown>[] {
  const rows: Record<string, unknown>[] = [];
  for (const offset of [0, 1]) {
    const i = [1 + offset, null, -70000, 2 ** 30];
    const f = [0.5, -1e300, 3.25, offset];
    const s = ['héllo', null, '', 'x'.repeat(300 + offset)];
    const l = [[1, 2], [], [2 ** 40], [-5, 6, 7]];
    const d = [3, 2, 1, 0].map((k) => WORDS[k]);
    for (let r = 0; r < 4; r++) rows.push({ i: i[r], f: f[r], s: s[r], l: l[r], d: d[r] });
  }
  return rows;
}

function sharedDictionaryStream(): IpcMessage[] {
  const columns: Column[] = [
    { name: 'from', type: 'dictionary', id: 7, bits: 8, values: [0, 1, 2, 0] },
    { name: 'to', type: 'dictionary', id: 7, bits: 16, values: [2, 2, 1, 3] },
    { name: 'n', type: 'int32', values: [10, 20, 30, 40] },
  ];
  return [schemaMessage(columns, false), dictionaryMessage(7, WORDS, false), batchMessage(columns, false)];
}

function validate(messages: readonly IpcMessage[]): string | undefined {
  const v = new IpcStreamValidator();
  try {
    messages.forEach((m, i) => v.message(i, m.header, m.body));
    v.finish(messages.length);
    return undefined;
  } catch (err) {
    if (err instanceof IpcValidationError) return err.message;
    throw err;
  }
}

describe('the validator reads a stream in its own byte order', () => {
  it('accepts a big-endian stream, and refuses the same bytes declared little-endian', () => {
    expect(validate(bigEndianStream(true))).toBeUndefined();
    // A little-endian schema over big-endian values: the offsets read as little-endian are absurd.
    const le = bigEndianStream(true);
    le[0] = bigEndianStream(false)[0]!;
    expect(validate(le)).toMatch(/IPC rule "(offsets|buffers)"/);
  });

  it('refuses a big-endian stream whose offsets, read big-endian, run past its data', () => {
    const messages = bigEndianStream(true);
    const batch = batchMessage(
      [
        { name: 'i', type: 'int32', values: [100, 200, 300, 400] },
        { name: 'f', type: 'float64', values: [1, 2, 3, 4] },
        { name: 's', type: 'utf8', values: ['a', 'b', 'c', 'd'] },
        { name: 'l', type: 'list<int64>', values: [[], [], [], []] },
        { name: 'd', type: 'dictionary', id: 0, bits: 16, values: [0, 0, 0, 0] },
      ],
      true,
    );
    // The last utf8 offset (big-endian int32s 0, 1, 2, 3, 4) now says 4096.
    const last = batch.body.indexOf(Buffer.from('0000000300000004', 'hex')) + 4;
    batch.body.writeInt32BE(4096, last);
    messages[2] = batch;
    expect(validate(messages)).toMatch(/field "s" data has 4 bytes; 4096 are needed/);
  });

  it('accepts fields sharing a dictionary whose values agree, and refuses a conflict', () => {
    expect(validate(sharedDictionaryStream())).toBeUndefined();
    const conflict = schemaMessage(
      [
        { name: 'a', type: 'dictionary', id: 0, bits: 8, values: [] },
        { name: 'b', type: 'dictionary', id: 0, bits: 8, values: [], valueType: 'int32' },
      ],
      false,
    );
    expect(validate([conflict])).toMatch(
      /dictionary id 0 is declared with values of type utf8 and again by field 1 \("b"\) with int32/,
    );
  });

  it('never splits a big-endian batch for server.maxBatchBytes (arrow-js would re-encode it little-endian)', async () => {
    const splitter = await BatchSplitter.create(64, silentLogger);
    const [schema, dictionary, batch] = bigEndianStream(true) as [IpcMessage, IpcMessage, IpcMessage];
    const frame = { kind: 'batch' as const, ...batch, appMetadata: Buffer.alloc(0), rows: 4 };
    const dict = { kind: 'dictionary' as const, ...dictionary, appMetadata: Buffer.alloc(0), rows: 4 };
    expect(splitter.needsSplit(frame)).toBe(true);
    expect(splitter.split(schema.header, [dict], frame)).toBeUndefined();
  });
});

describe('big-endian and shared-dictionary flights through a server', () => {
  let server: TestServer;
  let client: FlightClient;
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'tierflight-ipc-edges-'));
    server = await startTestServer(`storageTypes:
  memory: { capacity: 64MiB }
  disk_mapped: { path: ${dir}/mapped, capacity: 64MiB }
  disk: { path: ${dir}/disk, capacity: 64MiB }
durableStores:
  - { id: local, type: filesystem, path: ${dir}/durable }
storageClasses:
  - { name: mapped, prefix: mapped, tiers: [{ storage: disk_mapped }] }
  - { name: disk, prefix: disk, tiers: [{ storage: disk }] }
  - { name: durable, prefix: durable, durability: strong, durableStore: local, tiers: [{ storage: memory }] }
  - { name: mem, prefix: "", tiers: [{ storage: memory }] }
`);
    client = new FlightClient(server.location);
  });
  afterAll(async () => {
    client?.close();
    await server?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const put = (p: string, messages: IpcMessage[]) =>
    client.doPut(
      p,
      messages.map((m) => ({ ...m, appMetadata: Buffer.alloc(0) })),
    );
  const raw = async (p: string): Promise<IpcMessage[]> => {
    const info = await client.getFlightInfo(p);
    const out: IpcMessage[] = [];
    for await (const m of client.doGet(info.endpoints[0]!.ticket)) out.push({ header: m.header, body: m.body });
    return out;
  };

  for (const where of ['mem', 'mapped', 'disk', 'durable']) {
    it(`stores a big-endian stream in ${where} as received, and pyarrow reads it back`, async () => {
      const p = `${where === 'mem' ? 'm' : where}/big-endian`;
      const sent = bigEndianStream(true);
      await put(p, sent);
      const back = await raw(p);
      expect(back).toHaveLength(sent.length);
      back.forEach((m, i) => {
        expect(m.header.equals(sent[i]!.header)).toBe(true);
        expect(m.body.equals(sent[i]!.body)).toBe(true);
      });
      const read = await runPyClient<{ schema: string[][]; rows: unknown[]; records: number }>(
        'read-table',
        server.location,
        ['--path', p],
      );
      expect(read.schema).toEqual([
        ['i', 'int32'],
        ['f', 'double'],
        ['s', 'string'],
        ['l', 'list<item: int64>'],
        ['d', 'dictionary<values=string, indices=int16, ordered=0>'],
      ]);
      expect(read.rows).toEqual(expectedRows());
      expect(read.records).toBe(8);
    });
  }

  it('stores two columns sharing one dictionary, and pyarrow decodes both', async () => {
    await put('shared/dict', sharedDictionaryStream());
    const read = await runPyClient<{ rows: unknown[] }>('read-table', server.location, ['--path', 'shared/dict']);
    expect(read.rows).toEqual([
      { from: 'alpha', to: 'gamma', n: 10 },
      { from: 'beta', to: 'gamma', n: 20 },
      { from: 'gamma', to: 'beta', n: 30 },
      { from: 'alpha', to: '', n: 40 },
    ]);
  });

  it('refuses a shared dictionary whose value types conflict, naming both', async () => {
    const conflict: Column[] = [
      { name: 'a', type: 'dictionary', id: 0, bits: 8, values: [0] },
      { name: 'b', type: 'dictionary', id: 0, bits: 8, values: [0], valueType: 'int32' },
    ];
    const err = await put('shared/conflict', [schemaMessage(conflict, false)]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FlightCallError);
    expect(err).toMatchObject({ code: FlightStatus.INVALID_ARGUMENT });
    expect((err as Error).message).toMatch(/dictionary id 0 is declared with values of type utf8 .* with int32/);
    expect(server.app.manager.has(flightPath(['shared/conflict']))).toBe(false);
  });
});
