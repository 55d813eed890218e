import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runPyClient } from '../helpers/python.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

/**
 * Readers and writers of the same paths at once (pyarrow): 3 writers replace 3 paths of
 * 4 MiB flights (4 endpoints each) as fast as they can, 4 readers read them by the
 * endpoints of one GetFlightInfo and by plain path, with memory spilling to disk_mapped.
 * Every read is whole and of one version; a ticket is honoured until its endpoint's
 * expiration_time (server.ticketGrace); nothing answers INTERNAL.
 */
describe('readers and writers of the same paths under churn', () => {
  let server: TestServer;
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'tierflight-churn-'));
    server = await startTestServer(
      `storageTypes:
  memory: { capacity: 64MiB }
  disk_mapped: { path: ${dir}/mapped, capacity: 2GiB }
storageClasses:
  - name: default
    prefix: ""
    tiers:
      - { storage: memory, evictionSpill: true }
      - { storage: disk_mapped }
`,
      { server: '  maxEndpointBytes: 1MiB\n' },
    );
  });
  afterAll(async () => {
    await server?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('reads every endpoint of a GetFlightInfo whole while the path is replaced, and never mixes versions', async () => {
    const out = await runPyClient<{
      puts: number;
      endpoint_reads: number;
      path_reads: number;
      stale: number;
      stale_rate: number;
      mixed: number;
      errors: string[];
    }>('churn', server.location, ['--script', JSON.stringify({ seconds: 10, writers: 3, readers: 4, kib: 4096 })]);
    process.stdout.write(`churn: ${JSON.stringify({ ...out, errors: out.errors.length })}\n`);
    expect(out.errors.slice(0, 5)).toEqual([]);
    expect(out.mixed).toBe(0);
    expect(out.puts).toBeGreaterThan(50);
    expect(out.endpoint_reads).toBeGreaterThan(100);
    // Only eviction under pressure may end a ticket's grace early: with memory spilling to
    // disk_mapped and the oldest replaced versions evicted first, that stays rare.
    expect(out.stale_rate).toBeLessThan(0.02);
    server.app.manager.checkAccounting();
  });
});
