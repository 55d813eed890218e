import { tableFromArrays, tableToIPC } from 'apache-arrow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FlightCallError, FlightClient, FlightStatus } from '../../src/client/flight-client.js';
import { encapsulatedMessages, type IpcMessage } from '../../src/ipc/ipc-stream.js';
import { runPyClient } from '../helpers/python.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

/**
 * Every error a client can act on says what to do next: the `x-tierflight-retry` trailer
 * (here / here;after=ms / other / never) and the same in words at the end of the message
 * (README "Errors say what to do next"). Seen through a real gRPC client.
 */
const ints = (n: number, v = 1) => tableToIPC(tableFromArrays({ v: new Int32Array(n).fill(v) }), 'stream');

async function failure(p: Promise<unknown>): Promise<FlightCallError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(FlightCallError);
  return err as FlightCallError;
}

describe('retry hints', () => {
  let server: TestServer;
  let client: FlightClient;
  beforeAll(async () => {
    server = await startTestServer(
      `storageTypes:\n  memory: { capacity: 1MiB }\n` +
        `storageClasses:\n` +
        `  - { name: small, prefix: small, tiers: [{ storage: memory, maxFlightSize: 64KiB, uploadSpill: reject }] }\n` +
        `  - { name: all, prefix: "", tiers: [{ storage: memory }] }\n`,
    );
    client = new FlightClient(server.location);
  });
  afterAll(async () => {
    client?.close();
    await server?.stop();
  });

  it('never: a missing flight, a bad path, a flight larger than its tier allows', async () => {
    const missing = await failure(client.getFlightInfo('no/such'));
    expect(missing.code).toBe(FlightStatus.NOT_FOUND);
    expect(missing.retry).toEqual({ where: 'never' });
    expect(missing.details).toBe('flight "no/such" not found [retrying the same call will not help]');

    const bad = await failure(client.getFlightInfo(['a', '..', 'b']));
    expect(bad.code).toBe(FlightStatus.INVALID_ARGUMENT);
    expect(bad.retry).toEqual({ where: 'never' });
    expect(bad.details).toMatch(/ \[retrying the same call will not help\]$/);

    const big = await failure(client.putStream('small/big', ints(100_000)));
    expect(big.code).toBe(FlightStatus.RESOURCE_EXHAUSTED);
    expect(big.retry).toEqual({ where: 'never' });
    expect(big.details).toMatch(/maxFlightSize.*uploadSpill is "reject" \[retrying the same call will not help\]$/);
  });

  it('here after 1 s: a tier whose room a put in progress holds, a dataset still being written', async () => {
    // A put holding 600 KB of the 1 MiB tier, its stream still open.
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const holding = (async function* (): AsyncGenerator<IpcMessage> {
      yield* encapsulatedMessages(ints(150_000));
      await gate;
    })();
    const first = client.doPut('held', holding);
    await new Promise((r) => setTimeout(r, 300));
    const full = await failure(client.putStream('second', ints(150_000)));
    expect(full.code).toBe(FlightStatus.RESOURCE_EXHAUSTED);
    expect(full.retry).toEqual({ where: 'here', afterMs: 1000 });
    expect(full.details).toMatch(/memory is full: .* \[retry in 1 s\]$/);
    release();
    await first;
    // As the hint says, it fits once the other put is done (and evictable).
    await client.putStream('second', ints(150_000));

    await client.putStream('ds/half', ints(10), { 'x-tierflight-partition': '0/2' });
    const incomplete = await failure(client.getFlightInfo('ds/half'));
    expect(incomplete.code).toBe(FlightStatus.NOT_FOUND);
    expect(incomplete.retry).toEqual({ where: 'here', afterMs: 1000 });
    expect(incomplete.details).toBe(
      'dataset "ds/half" is not complete: 1 of 2 partitions have landed; missing partition 1 [retry in 1 s]',
    );
  });

  it('pyarrow shows the words in its exception', async () => {
    const [get, info] = await runPyClient<{ error: string; message: string }[]>('ops', server.location, [
      '--script',
      JSON.stringify([
        { op: 'get', path: 'no/such' },
        { op: 'info', path: 'ds/half' },
      ]),
    ]);
    expect(get?.error).toBe('ArrowKeyError'); // pyarrow's exception for NOT_FOUND
    expect(get?.message).toMatch(/flight "no\/such" not found \[retrying the same call will not help\]/);
    expect(info?.message).toMatch(/missing partition 1 \[retry in 1 s\]/);
  });
});
