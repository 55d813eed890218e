import { flightPath } from '../../src/core/path.js';
import { status } from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { runPyClient, spawnPyClient } from '../helpers/python.js';
import { flightData, RawFlightClient, sampleMessages } from '../helpers/raw-client.js';
import { MEMORY_ONLY, startTestServer, type TestServer } from '../helpers/server.js';

const waitFor = async (cond: () => boolean, ms = 10_000): Promise<void> => {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
};

describe('bad input gets a clear error and loses nothing', () => {
  let server: TestServer;
  let raw: RawFlightClient;
  const { schema, batches } = sampleMessages();
  const pathDescriptor = (path: string) => ({ type: 'PATH' as const, path: [path] });

  beforeAll(async () => {
    server = await startTestServer(MEMORY_ONLY('16MiB'), { server: '  maxMessageSize: 1MiB\n' });
    raw = new RawFlightClient(server.location);
  });
  afterAll(async () => {
    raw?.close();
    await server?.stop();
  });
  afterEach(() => {
    server.app.manager.checkAccounting();
    expect(server.app.manager.stats().putsInProgress).toBe(0);
  });

  const expectNothingStored = (path: string): void => {
    expect(() => server.app.manager.lookup(flightPath([path]))).toThrow(/not found/);
  };

  it('accepts a well-formed raw put (the control case)', async () => {
    const out = await raw.doPut([
      flightData({ descriptor: pathDescriptor('bad/ok'), header: schema.header }),
      ...batches.map((b, i) => flightData({ header: b.header, body: b.body, appMetadata: Buffer.from(`m${i}`) })),
    ]);
    expect(out.code).toBe(status.OK);
    expect(out.results).toHaveLength(2);
    expect(server.app.manager.lookup(flightPath(['bad/ok'])).totalRecords).toBe(8);
  });

  const cases: [string, () => Buffer[], number, RegExp][] = [
    ['garbage bytes', () => [Buffer.from([0xff, 0xff, 0xff, 0x07])], status.INVALID_ARGUMENT, /malformed FlightData/],
    [
      'a truncated message',
      () => [
        flightData({ descriptor: pathDescriptor('bad/x'), header: schema.header }),
        flightData({ header: batches[0]!.header, body: batches[0]!.body }).subarray(0, 40),
      ],
      status.INVALID_ARGUMENT,
      /malformed FlightData|runs past|outside/,
    ],
    [
      'a body shorter than its header declares',
      () => [
        flightData({ descriptor: pathDescriptor('bad/x'), header: schema.header }),
        flightData({ header: batches[0]!.header, body: batches[0]!.body.subarray(0, 8) }),
      ],
      status.INVALID_ARGUMENT,
      /message 1 breaks the IPC rule "body-length": data_body has 8 bytes but the header declares 16/,
    ],
    [
      'a data_header that is not an Arrow message',
      () => [
        flightData({ descriptor: pathDescriptor('bad/x'), header: schema.header }),
        flightData({ header: Buffer.from('not a flatbuffer at all, just text'), body: Buffer.alloc(8) }),
      ],
      status.INVALID_ARGUMENT,
      /flight "bad\/x"/,
    ],
    [
      'no descriptor',
      () => [flightData({ header: schema.header })],
      status.INVALID_ARGUMENT,
      /must carry a FlightDescriptor/,
    ],
    [
      'a descriptor without schema',
      () => [flightData({ descriptor: pathDescriptor('bad/x') })],
      status.INVALID_ARGUMENT,
      /carries no schema/,
    ],
    [
      'a CMD descriptor',
      () => [flightData({ descriptor: { type: 'CMD', cmd: Buffer.from('SELECT 1') }, header: schema.header })],
      status.INVALID_ARGUMENT,
      /PATH descriptors; got descriptor type CMD/,
    ],
    [
      'a record batch where the schema belongs',
      () => [flightData({ descriptor: pathDescriptor('bad/x'), header: batches[0]!.header, body: batches[0]!.body })],
      status.INVALID_ARGUMENT,
      /message 0 breaks the IPC rule "schema-first"/,
    ],
    [
      'a second schema mid-stream',
      () => [
        flightData({ descriptor: pathDescriptor('bad/x'), header: schema.header }),
        flightData({ header: schema.header }),
      ],
      status.INVALID_ARGUMENT,
      /message 1 breaks the IPC rule "schema-once"/,
    ],
    ['an empty stream', () => [], status.INVALID_ARGUMENT, /ended without any message/],
    [
      'a message over maxMessageSize',
      () => [
        flightData({ descriptor: pathDescriptor('bad/x'), header: schema.header }),
        flightData({ header: batches[0]!.header, body: Buffer.alloc(2 * 1024 * 1024) }),
      ],
      status.RESOURCE_EXHAUSTED,
      /./,
    ],
  ];

  it.each(cases)('rejects %s, stores nothing, keeps serving', async (_name, frames, code, message) => {
    const before = server.app.manager.stats().storageTypes.memory?.used;
    const out = await raw.doPut(frames());
    expect(out.code).toBe(code);
    expect(out.details).toMatch(message);
    expectNothingStored('bad/x');
    await waitFor(() => server.app.manager.stats().putsInProgress === 0);
    expect(server.app.manager.stats().storageTypes.memory?.used).toBe(before);
    const again = await raw.doPut([flightData({ descriptor: pathDescriptor('bad/after'), header: schema.header })]);
    expect(again.code).toBe(status.OK);
  });

  it('ends a put over maxMessageSize with its status at once, also for a client that reads no acks (pyarrow)', async () => {
    const out = await runPyClient<Record<string, number>>('oversize-no-acks', server.location, [
      '--path',
      'bad/oversize',
      '--batches',
      '30',
    ]);
    // pyarrow surfaces RESOURCE_EXHAUSTED as ArrowInvalid; a put left without a status would end in a timeout.
    expect(Object.entries(out)).toEqual([
      [expect.stringMatching(/^ArrowInvalid: .*resource exhausted.*larger than max \(2400150 vs 1048576\)/), 30],
    ]);
    expectNothingStored('bad/oversize/0');
  });

  it('ends a put over capacity with its status at once, also for a client that reads no acks (pyarrow)', async () => {
    const out = await runPyClient<Record<string, number>>('oversize-no-acks', server.location, [
      '--path',
      'bad/overfull',
      '--batches',
      '10',
      '--mib',
      '24', // the server has 16 MiB of memory
    ]);
    // One message per flight path; every put ends with RESOURCE_EXHAUSTED, none at its deadline.
    expect(Object.values(out).reduce((a, b) => a + b, 0)).toBe(10);
    for (const error of Object.keys(out)) {
      expect(error).toMatch(
        /^ArrowInvalid: .*resource exhausted.*flight "bad\/overfull\/\d+": the flight .* exceeds the memory/,
      );
    }
    expectNothingStored('bad/overfull/0');
  });

  it('rejects malformed paths with INVALID_ARGUMENT naming the rule (pyarrow client)', async () => {
    const out = await runPyClient<Record<string, { error: string | null; message: string }>>(
      'bad-paths',
      server.location,
    );
    expect(Object.keys(out)).toHaveLength(7);
    for (const [name, result] of Object.entries(out)) {
      expect({ name, error: result.error }).toEqual({ name, error: 'ArrowInvalid' });
      expect(result.message).toMatch(/invalid argument.*(segment|control character|longer than 1024)/);
    }
    expect(server.app.manager.list('').map((v) => v.path)).not.toContain('a');
  });

  it('rejects a flight that cannot fit in memory with RESOURCE_EXHAUSTED naming the flight', async () => {
    const before = server.app.manager.stats().storageTypes.memory?.used;
    const big = sampleMessages((900 * 1024) / 4, 1).batches[0]!;
    const frames = [flightData({ descriptor: pathDescriptor('bad/huge'), header: schema.header })];
    for (let i = 0; i < 20; i++) frames.push(flightData(big));
    const out = await raw.doPut(frames);
    expect(out.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(out.details).toMatch(/flight "bad\/huge": .*exceeds the memory capacity 16MiB/);
    expectNothingStored('bad/huge');
    expect(server.app.manager.stats().storageTypes.memory?.used).toBe(before);
  });

  it('drops a put whose client dies mid-stream and frees its bytes', async () => {
    const before = server.app.manager.stats().storageTypes.memory?.used ?? 0;
    const { child } = await spawnPyClient('put-then-die', server.location, ['--path', 'bad/dies', '--batches', '8']);
    await waitFor(() => (server.app.manager.stats().storageTypes.memory?.reserved ?? 0) > 0);
    child.kill('SIGKILL');
    await waitFor(() => server.app.manager.stats().putsInProgress === 0);
    expectNothingStored('bad/dies');
    expect(server.app.manager.stats().storageTypes.memory?.used).toBe(before);
  });

  it('releases a flight whose reader disconnects mid-stream', async () => {
    const frames = [flightData({ descriptor: pathDescriptor('bad/read'), header: schema.header })];
    const chunk = sampleMessages((64 * 1024) / 4, 1).batches[0]!;
    for (let i = 0; i < 64; i++) frames.push(flightData(chunk));
    expect((await raw.doPut(frames)).code).toBe(status.OK);
    const result = await runPyClient<{ rows: number }>('get-partial', server.location, ['--path', 'bad/read']);
    expect(result.rows).toBe(16 * 1024);
    // A reader that stops reading and then cancels.
    const stream = raw.doGetStream('bad/read');
    await new Promise<void>((resolve) => stream.once('data', () => resolve()));
    stream.pause();
    expect(server.app.manager.lookup(flightPath(['bad/read'])).placed?.pins).toBe(1);
    stream.on('error', () => undefined);
    stream.cancel();
    await waitFor(() => server.app.manager.lookup(flightPath(['bad/read'])).placed?.pins === 0);
    expect(server.app.manager.delete(flightPath(['bad/read']))).toBe(true);
    expect(server.app.manager.stats().storageTypes.memory?.pinnedRetired).toBe(0);
  });
});
