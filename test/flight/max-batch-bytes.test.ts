import { afterEach, describe, expect, it } from 'vitest';
import { runPyClient } from '../helpers/python.js';
import { MEMORY_ONLY, startTestServer, type TestServer } from '../helpers/server.js';

// server.maxBatchBytes: a client that refuses messages over 4 MiB (as Go and Rust clients
// do by default) still reads a flight stored in 8 MiB batches.

let server: TestServer | undefined;
afterEach(async () => {
  await server?.stop();
  server = undefined;
});

const script = [
  { op: 'put', path: 'big', kib: 24 * 1024, seed: 3, batch_kib: 8 * 1024 },
  { op: 'get-limited', path: 'big', kib: 24 * 1024, seed: 3, batch_kib: 8 * 1024 },
];

describe('server.maxBatchBytes (pyarrow client limited to 4 MiB messages)', () => {
  it('without it, the limited client cannot read 8 MiB batches', async () => {
    server = await startTestServer(MEMORY_ONLY('256MiB'));
    const out = await runPyClient<Record<string, unknown>[]>('ops', server.location, [
      '--script',
      JSON.stringify(script),
    ]);
    expect(out[0]).toMatchObject({ ok: true });
    // The C++ gRPC client under pyarrow cancels a call whose message is over its limit.
    expect(out[1]).toMatchObject({ error: 'FlightCancelledError' });
    expect(out[1]).not.toHaveProperty('equal');
  });

  it('with maxBatchBytes 2MiB, the same client reads the whole flight in smaller batches', async () => {
    server = await startTestServer(MEMORY_ONLY('256MiB'), { server: '  maxBatchBytes: 2MiB\n' });
    const out = await runPyClient<Record<string, unknown>[]>('ops', server.location, [
      '--script',
      JSON.stringify(script),
    ]);
    expect(out[0]).toMatchObject({ ok: true });
    expect(out[1]).toMatchObject({ equal: true, rows: 24 * 128 * 1024 });
    expect(Number(out[1]?.batches)).toBeGreaterThan(3 * 4); // each 8 MiB (12 MiB with indices) batch in several
    expect((out[1]?.metas as unknown[])[0]).toBe('batch-0'); // app_metadata rides on a batch's first slice
  });
});
