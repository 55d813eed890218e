import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { status } from '@grpc/grpc-js';
import { Dictionary, Float64, Int32, Table, tableToIPC, Utf8, vectorFromArray } from 'apache-arrow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FlightCallError, FlightClient } from '../../src/client/flight-client.js';
import { encapsulatedMessages } from '../../src/ipc/ipc-stream.js';
import { runPyClient } from '../helpers/python.js';
import { MEMORY_ONLY, startTestServer, type TestServer } from '../helpers/server.js';

/** Three record batches of 1,000 rows sharing one dictionary: ints with nulls, strings, a dictionary column, floats. */
function sampleStream(): Uint8Array {
  const n = 3000;
  const whole = new Table({
    id: vectorFromArray(
      Array.from({ length: n }, (_, i) => (i % 7 === 0 ? null : i)),
      new Int32(),
    ),
    name: vectorFromArray(
      Array.from({ length: n }, (_, i) => `row ${i} ${'é'.repeat(i % 3)}`),
      new Utf8(),
    ),
    colour: vectorFromArray(
      Array.from({ length: n }, (_, i) => ['red', 'green', 'blue'][i % 3] as string),
      new Dictionary(new Utf8(), new Int32()),
    ),
    value: vectorFromArray(
      Array.from({ length: n }, (_, i) => i / 3),
      new Float64(),
    ),
  });
  const batch = whole.batches[0]!;
  return tableToIPC(new Table([0, 1, 2].map((b) => batch.slice(b * 1000, (b + 1) * 1000))), 'stream');
}

describe('the typed Flight client (src/client) against Tierflight, checked with pyarrow', () => {
  let server: TestServer;
  let client: FlightClient;
  let dir: string;
  let file: string;

  beforeAll(async () => {
    server = await startTestServer(MEMORY_ONLY('64MiB'), { server: '  maxEndpointBytes: 32KiB\n' });
    client = new FlightClient(server.location);
    dir = await mkdtemp(path.join(os.tmpdir(), 'tierflight-client-'));
    file = path.join(dir, 'sample.arrows');
    await writeFile(file, sampleStream());
  });
  afterAll(async () => {
    client?.close();
    await server?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('puts a stream that pyarrow reads back equal, and reads back a pyarrow put equal, across endpoints', async () => {
    const bytes = await readFile(file);
    const acks = await client.putStream('client/put', bytes);
    // One PutResult per record batch is sent only when the batch carries app_metadata.
    expect(acks).toEqual([]);
    expect(
      await runPyClient('flight-equals-file', server.location, ['--path', 'client/put', '--script', file]),
    ).toEqual({ equal: true, rows: 3000, endpoints: 3 });

    await runPyClient('put-ipc-file', server.location, ['--path', 'py/put', '--script', file]);
    const back = path.join(dir, 'back.arrows');
    await writeFile(back, await client.getStream('py/put'));
    expect(await runPyClient('files-equal', server.location, ['--script', JSON.stringify([file, back])])).toEqual({
      equal: true,
      rows: 3000,
    });
  });

  it('answers the metadata calls and actions with typed values', async () => {
    const messages = encapsulatedMessages(await readFile(file));
    const batchMeta = messages.map((m, i) => ({ ...m, appMetadata: Buffer.from(`m${i}`) }));
    const acks = await client.doPut(['client', 'meta'], batchMeta);
    // messages: schema, one dictionary, three batches: acknowledged once per batch
    expect(acks.map(String)).toEqual(['m2', 'm3', 'm4']);

    const info = await client.getFlightInfo('client/meta');
    expect(info).toMatchObject({ path: ['client', 'meta'], totalRecords: 3000 });
    expect(info.schemaHeader.equals(messages[0]!.header)).toBe(true);
    expect((await client.getSchema('client/meta')).equals(messages[0]!.header)).toBe(true);
    expect((await client.listFlights('client')).map((f) => f.path.join('/'))).toEqual(['client/meta', 'client/put']);
    expect((await client.listActions()).map((a) => a.type)).toEqual(
      expect.arrayContaining(['delete', 'delete-prefix', 'stats']),
    );
    const [stats] = await client.action<{ flights: number }>('stats');
    expect(stats?.flights).toBe(3);
    expect(await client.action('delete', { path: 'client/meta' })).toEqual([{ deleted: true }]);
    // A server without users answers the handshake and hands out no token.
    expect((await client.handshake()).authorization).toBeUndefined();
  });

  it('rejects with the status the server sent', async () => {
    const missing = await client.getFlightInfo('no/such').catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(FlightCallError);
    expect(missing).toMatchObject({ code: status.NOT_FOUND, method: 'GetFlightInfo' });
    expect((missing as Error).message).toMatch(/flight "no\/such" not found/);

    const [schema] = encapsulatedMessages(await readFile(file));
    const garbage = { header: Buffer.from('not a flatbuffer at all'), body: Buffer.alloc(0) };
    const bad = await client.doPut('client/bad', [schema!, garbage]).catch((e: unknown) => e);
    expect(bad).toMatchObject({ code: status.INVALID_ARGUMENT, method: 'DoPut' });
    expect((await client.listFlights('client/bad')).length).toBe(0);
  });
});
