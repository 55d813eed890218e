import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tableFromArrays, tableToIPC } from 'apache-arrow';
import { FlightClient, FlightStatus } from '../../src/client/flight-client.js';
import { flightPath } from '../../src/core/path.js';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { runPyClient } from '../helpers/python.js';
import { GO_CLIENT } from '../setup/clients.js';
import { MEMORY_ONLY, startTestServer, type TestServer } from '../helpers/server.js';

type PyError = { error: string; message: string };

/**
 * Partitioned datasets on one node, as pyarrow users write and read them: eight writers put
 * the partitions in parallel with `x-tierflight-partition`, and the dataset is all or
 * nothing — NOT_FOUND naming the missing partition before, the whole table after, read by
 * its endpoints (one per partition, in order) or by DoGet of the plain path.
 */
describe('partitioned datasets (pyarrow, one node)', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer(MEMORY_ONLY('256MiB'), { server: '  ticketGrace: 30s\n' });
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('are visible only when every partition of a generation landed, and read whole', async () => {
    const out = await runPyClient<{
      partial: PyError;
      endpoints: number;
      ordered: boolean;
      records: number;
      equal: boolean;
      metadata: { partitions: number };
      plain_equal: boolean;
      listed: string[];
      old_generation_while_new_pending: boolean;
      new_generation: boolean;
      old_ticket_reads: boolean;
      schema_mismatch: PyError;
      bad_header: PyError;
      delete: { deleted: boolean }[];
      after_delete: PyError;
    }>('datasets', server.location, ['--path', 'ml/features']);
    expect(out.partial.error).toBe('ArrowKeyError'); // pyarrow's NOT_FOUND
    expect(out.partial.message).toMatch(/7 of 8 partitions have landed; missing partition 5\b/);
    expect(out.endpoints).toBe(8);
    expect(out.ordered).toBe(true);
    expect(out.records).toBe(8 * 2000);
    expect(out.equal).toBe(true);
    expect(out.metadata.partitions).toBe(8);
    expect(out.plain_equal).toBe(true);
    // One entry for the dataset: its partitions are not listed as flights.
    expect(out.listed).toEqual(['ml/features']);
    expect(out.old_generation_while_new_pending).toBe(true);
    expect(out.new_generation).toBe(true);
    expect(out.old_ticket_reads).toBe(true);
    expect(out.schema_mismatch.message).toMatch(/partition 1 has another schema/);
    expect(out.bad_header.message).toMatch(/x-tierflight-partition must be "<i>\/<n>"/);
    expect(out.delete).toEqual([{ deleted: true }]);
    expect(out.after_delete.error).toBe('ArrowKeyError');
    // Nothing of the dataset is left: every partition went with it.
    expect(server.app.manager.list('ml').map((v) => v.path)).toEqual([]);
    server.app.manager.checkAccounting();
  });

  it('are written in parallel and read whole by arrow-go', async () => {
    const { stdout } = await promisify(execFile)(GO_CLIENT, ['dataset', `127.0.0.1:${server.port}`], {
      timeout: 120_000,
    });
    const out = JSON.parse(stdout) as Record<string, { ok: boolean; error?: string; endpoints: number; rows: number }>;
    expect(out.dataset).toMatchObject({ ok: true, endpoints: 4, rows: 1200 });
  });

  it('refuses client paths in the partitions namespace', async () => {
    const out = await runPyClient<PyError[]>('ops', server.location, [
      '--script',
      JSON.stringify([{ op: 'put', path: 'a/.tierflight-partition/1/0', seed: 1, kib: 4 }]),
    ]);
    expect(out[0]?.message).toMatch(/reserved/);
  });
});

/** A durable dataset outlives a restart: it is found again from its stored partitions. */
describe('a partitioned dataset of a strong class across a restart', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'tf-datasets-'));
  const config = `storageTypes:
  memory: { capacity: 64MiB }
durableStores:
  - { id: fs, type: filesystem, path: ${dir}/durable }
storageClasses:
  - { name: kept, prefix: "", durability: strong, durableStore: fs, tiers: [{ storage: memory }] }
`;
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('is read whole after the server restarts', async () => {
    let server = await startTestServer(config, { server: `  spool: ${dir}/spool\n` });
    const before = await runPyClient<{ equal: boolean; endpoints: number }>('dataset-write', server.location, [
      '--path',
      'jobs/out',
    ]);
    expect(before).toEqual({ equal: true, endpoints: 4, listed: ['jobs/out'] });
    const port = server.port;
    await server.stop();
    server = await startTestServer(config, { port, server: `  spool: ${dir}/spool\n` });
    try {
      // Listed right after the restart, before anything asked for it.
      const listed = await runPyClient<string[]>('ops', server.location, [
        '--script',
        JSON.stringify([{ op: 'list' }]),
      ]);
      expect(listed).toEqual([['jobs/out']]);
      const after = await runPyClient<{ equal: boolean; endpoints: number }>('dataset-read', server.location, [
        '--path',
        'jobs/out',
      ]);
      expect(after).toEqual({ equal: true, endpoints: 4, listed: ['jobs/out'] });
    } finally {
      await server.stop();
    }
  });
});

/**
 * Memory pressure never leaves part of a dataset to read: evicting one partition drops the
 * dataset whole (its other partitions go too), reads say it was lost, and a metric counts it.
 */
describe('a partitioned dataset under memory pressure', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer(MEMORY_ONLY('6MiB'));
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('is dropped whole when a partition is evicted, and reads say so', async () => {
    const client = new FlightClient(server.location);
    try {
      const part = (i: number) => tableToIPC(tableFromArrays({ part: new Int32Array(200_000).fill(i) }), 'stream'); // ~800 KB
      for (let i = 0; i < 4; i++)
        await client.putStream('ds/pressure', part(i), { 'x-tierflight-partition': `${i}/4` });
      expect((await client.getFlightInfo('ds/pressure')).endpoints).toHaveLength(4);
      // Plain flights fill the tier: the least recently used copies, the dataset's first, go.
      for (let i = 0; i < 6; i++) await client.putStream(`fill/${i}`, part(9));
      await new Promise((r) => setTimeout(r, 50)); // the drop runs right after the eviction
      await expect(client.getFlightInfo('ds/pressure')).rejects.toMatchObject({
        code: FlightStatus.NOT_FOUND,
        details: expect.stringMatching(
          /^dataset "ds\/pressure" lost partition \d of 4 \(evicted\); recompute it \[retrying the same call will not help\]$/,
        ),
      });
      expect(server.app.manager.storedPartitions(flightPath('ds/pressure'))).toEqual([]);
      expect(await server.app.metrics.registry.metrics()).toMatch(
        /^tierflight_datasets_lost_total\{reason="evict"\} 1$/m,
      );
      // Written again, it is a dataset again.
      for (let i = 0; i < 2; i++)
        await client.putStream('ds/pressure', part(i), { 'x-tierflight-partition': `${i}/2` });
      expect((await client.getFlightInfo('ds/pressure')).endpoints).toHaveLength(2);
      server.app.manager.checkAccounting();
    } finally {
      client.close();
    }
  });
});

describe('waiting for a dataset, and pinning one', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer(MEMORY_ONLY('6MiB'));
  });
  afterAll(async () => {
    await server?.stop();
  });
  const part = (i: number) => tableToIPC(tableFromArrays({ part: new Int32Array(200_000).fill(i) }), 'stream');

  it('answers a read that waits (x-tierflight-wait-ms) once the last partition lands', async () => {
    const client = new FlightClient(server.location);
    try {
      await client.putStream('ds/waited', part(0), { 'x-tierflight-partition': '0/2' });
      const started = Date.now();
      const waiting = client.getFlightInfo('ds/waited', { 'x-tierflight-wait-ms': '20000' });
      await new Promise((r) => setTimeout(r, 300));
      await client.putStream('ds/waited', part(1), { 'x-tierflight-partition': '1/2' });
      const info = await waiting;
      expect(info.endpoints).toHaveLength(2);
      expect(Date.now() - started).toBeGreaterThanOrEqual(250); // it did wait for the put
      expect(Date.now() - started).toBeLessThan(10_000); // and not for the whole wait
      // Without the header, an incomplete dataset answers at once.
      await client.putStream('ds/waited2', part(0), { 'x-tierflight-partition': '0/2' });
      await expect(client.getFlightInfo('ds/waited2')).rejects.toMatchObject({ code: FlightStatus.NOT_FOUND });
    } finally {
      client.close();
    }
  });

  it('keeps a pinned dataset whole under memory pressure, also its next generation', async () => {
    const client = new FlightClient(server.location);
    try {
      for (const p of ['ds/waited', 'ds/waited2']) await client.action('delete', { path: p });
      for (let i = 0; i < 2; i++) await client.putStream('ds/pinned', part(i), { 'x-tierflight-partition': `${i}/2` });
      expect(await client.action('pin', { path: 'ds/pinned' })).toEqual([{ pinned: true }]);
      for (let i = 0; i < 2; i++)
        await client.putStream('ds/pinned', part(i + 5), { 'x-tierflight-partition': `${i}/2` }); // generation 2
      for (let i = 0; i < 8; i++) await client.putStream(`fill/${i}`, part(9));
      const info = await client.getFlightInfo('ds/pinned');
      expect(info.endpoints).toHaveLength(2);
      expect(info.totalRecords).toBe(400_000);
      expect(await client.action('unpin', { path: 'ds/pinned' })).toEqual([{ unpinned: true }]);
    } finally {
      client.close();
    }
  });
});
