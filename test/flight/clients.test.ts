import { execFile } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GO_CLIENT, JAVA_CHECK } from '../setup/clients.js';
import { MEMORY_ONLY, startTestServer, type TestServer } from '../helpers/server.js';

/**
 * Interoperability with the Flight libraries of other languages, through our own small
 * programs on their public APIs (test/go on arrow-go, test/java on Arrow Java): every type
 * family each library supports, dictionaries, per-batch app_metadata whose
 * acknowledgements the client checks one by one, zero-row and many-batch flights, every
 * endpoint read back and compared batch by batch.
 */
function run(
  command: string,
  args: string[],
): Promise<Record<string, { ok: boolean; error?: string } & Record<string, unknown>>> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { timeout: 300_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${command} failed: ${err.message}\n${stderr}`));
      else resolve(JSON.parse(stdout));
    });
  });
}

describe('Go and Java Flight clients', () => {
  let server: TestServer;
  beforeAll(async () => {
    // Small endpoints so many-batch flights span several; maxBatchBytes for Go's 4 MiB limit.
    server = await startTestServer(MEMORY_ONLY('512MiB'), {
      server: '  maxEndpointBytes: 64KiB\n  maxBatchBytes: 3MiB\n  maxMessageSize: 64MiB\n',
    });
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('arrow-go puts and reads back every type family, one acknowledgement per batch', async () => {
    const out = await run(GO_CLIENT, ['roundtrip', `127.0.0.1:${server.port}`]);
    expect(Object.keys(out).sort()).toEqual([
      'decimals',
      'dictionaries',
      'empty-batches',
      'floats-and-bool',
      'integers',
      'many-batches',
      'nested',
      'nested-dictionaries',
      'run-end-and-null',
      'strings-and-binary',
      'temporal',
      'unions',
      'views',
      'zero-rows',
    ]);
    for (const [name, result] of Object.entries(out)) {
      expect({ name, ...result }).toMatchObject({ name, ok: true });
      expect(result.acks, name).toBe(result.batches);
    }
    expect(out['many-batches']).toMatchObject({ batches: 500, rows: 2000 });
    expect(out['many-batches']!.endpoints).toBeGreaterThan(1);
    server.app.manager.checkAccounting();
  });

  it('arrow-go reads a 12 MiB batch with its default 4 MiB receive limit (server.maxBatchBytes)', async () => {
    const out = await run(GO_CLIENT, ['bigbatch', `127.0.0.1:${server.port}`]);
    expect(out.bigbatch).toMatchObject({ ok: true, acks: 1, rows: (12 * 1024 * 1024) / 8 });
  });

  it('Arrow Java puts and reads back every type family, one acknowledgement per batch', async () => {
    const out = await run('java', [...JAVA_CHECK, '127.0.0.1', String(server.port)]);
    expect(Object.keys(out)).toEqual([
      'integers',
      'floats-and-bool',
      'strings-and-binary',
      'temporal',
      'decimals',
      'nested',
      'union',
      'dictionary',
      'zero-rows',
      'empty-batches',
      'many-batches',
    ]);
    for (const [name, result] of Object.entries(out)) expect({ name, ...result }).toEqual({ name, ok: true });
    server.app.manager.checkAccounting();
  });
});
