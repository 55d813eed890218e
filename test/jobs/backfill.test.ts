import { spawn } from 'node:child_process';
import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNode, type RunningNode } from '../../src/node/start.js';
import { FlightClient } from '../../src/client/flight-client.js';
import { loadConfigFile } from '../../src/config/load.js';
import { systemClock } from '../../src/core/clock.js';
import { silentLogger } from '../../src/core/log.js';
import type { JobProgress } from '../../src/jobs/runner.js';
import { runPyClient } from '../helpers/python.js';
import { startMoto, type Moto } from '../helpers/moto.js';
import { freePort } from '../helpers/server.js';
import { until } from '../helpers/until.js';
import { TIERFLIGHT_CLI } from '../helpers/cli.js';
import { ROOT } from '../setup/python-env.js';

/**
 * Backfill and prefetch jobs (DESIGN §6) on a real server: a class made durable by a reload
 * gets durable copies of the flights it already had, newest first, progress streamed; a
 * client that leaves does not stop the job and backfill-status reattaches; a second run
 * finds nothing left; prefetch restores durable-only flights into the first tier.
 */
const config = (port: number, dir: string, durable: boolean, archive = false) => `server:
  listen: 127.0.0.1:${port}
  shutdownGrace: 2s
storageTypes:
  memory: { capacity: 64MiB }
durableStores:
  - { id: files, type: filesystem, path: ${dir}/store }
storageClasses:
  - name: reports
    prefix: reports
${durable ? '    durability: weak\n    durableStore: files\n' : ''}    tiers: [{ storage: memory }]
  - name: archive
    prefix: archive
${archive ? '    durability: weak\n    durableStore: files\n' : ''}    tiers: [{ storage: memory }]
  - { name: other, prefix: "", tiers: [{ storage: memory }] }
`;

describe('backfill and prefetch', () => {
  let dir: string;
  let file: string;
  let port: number;
  let app: RunningNode;
  let client: FlightClient;
  const location = () => `grpc://127.0.0.1:${port}`;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'tierflight-jobs-'));
    file = path.join(dir, 'tierflight.yaml');
    port = await freePort();
    await writeFile(file, config(port, dir, false));
    app = await startNode(loadConfigFile(file).config, silentLogger, systemClock, { configFile: file });
    client = new FlightClient(location());
  });
  afterAll(async () => {
    client?.close();
    await app?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const results = async (verb: string, body: object): Promise<JobProgress[]> => client.action<JobProgress>(verb, body);

  it('writes durable copies of a class made durable by a reload, and a second run finds none left', async () => {
    await runPyClient('ops', location(), [
      '--script',
      JSON.stringify(Array.from({ length: 20 }, (_, i) => ({ op: 'put', path: `reports/r${i}`, kib: 64, seed: i }))),
    ]);
    // Not durable yet: backfill is refused, naming what to do.
    await expect(results('backfill', { class: 'reports' })).rejects.toMatchObject({ code: status.INVALID_ARGUMENT });
    await writeFile(file, config(port, dir, true));
    expect(app.reload()).toBe(true);
    const progress = await results('backfill', { class: 'reports', concurrency: 4 });
    const last = progress.at(-1)!;
    expect(last).toMatchObject({
      kind: 'backfill',
      target: 'reports',
      done: true,
      state: 'done',
      total: 20,
      processed: 20,
      uploaded: 20,
      failed: 0,
    });
    expect(last.bytes).toBeGreaterThan(20 * 64 * 1024);
    expect(Date.parse(last.checkpoint!)).toBeLessThanOrEqual(Date.now());
    const objects = (await readdir(path.join(dir, 'store', 'reports'))).filter((f) => !f.endsWith('.tmp'));
    expect(objects).toHaveLength(20);
    expect(app.manager.stats().classes.reports?.durableBytes).toBeGreaterThan(0);
    const again = await results('backfill', { class: 'reports' });
    expect(again.at(-1)).toMatchObject({ done: true, total: 0, uploaded: 0 });
    const metrics = await app.metrics.registry.metrics();
    expect(metrics).toMatch(/^tierflight_job_items_total\{kind="backfill",target="reports",outcome="uploaded"\} 20$/m);
  });

  it('goes on when the client leaves; backfill-status reattaches and sees it finish', async () => {
    await runPyClient('ops', location(), [
      '--script',
      JSON.stringify(
        Array.from({ length: 30 }, (_, i) => ({ op: 'put', path: `reports/late${i}`, kib: 256, seed: 100 + i })),
      ),
    ]);
    // Weak uploads of new puts race the backfill; both write the same objects, and each
    // flight counts once as uploaded or skipped.
    let id = '';
    for await (const result of client.doAction('backfill', { class: 'reports', concurrency: 1 })) {
      id = (JSON.parse(result.toString()) as JobProgress).id;
      break; // the client goes away after the first progress result
    }
    expect(id).toMatch(/^[0-9a-f]{12}$/);
    const reattached = await results('backfill-status', { id });
    expect(reattached.at(-1)).toMatchObject({ id, done: true, failed: 0 });
    const last = reattached.at(-1)!;
    expect(last.uploaded + last.skipped).toBe(last.total);
    await expect(results('backfill-status', { id: 'nope' })).rejects.toMatchObject({ code: status.NOT_FOUND });
  });

  it('resumes from a checkpoint: only flights created at or before it, newest first', async () => {
    for (let i = 0; i < 6; i++) {
      await runPyClient('ops', location(), [
        '--script',
        JSON.stringify([{ op: 'put', path: `archive/a${i}`, kib: 16, seed: i }]),
      ]);
      await new Promise((r) => setTimeout(r, 5)); // distinct creation times
    }
    await writeFile(file, config(port, dir, true, true));
    expect(app.reload()).toBe(true);
    const created = app.manager
      .list('archive')
      .map((v) => v.createdAt)
      .sort((a, b) => a - b);
    const checkpoint = new Date(created[2]!).toISOString(); // a0..a2 are at or before it
    const progress = await results('backfill', { class: 'archive', resume: checkpoint, concurrency: 1 });
    expect(progress.at(-1)).toMatchObject({ done: true, total: 3, uploaded: 3 });
    expect(progress.at(-1)?.checkpoint).toBe(new Date(created[0]!).toISOString()); // reached the oldest
    // One at a time, newest first: a2's object was written before a1's, a1's before a0's.
    const written = await Promise.all(
      ['a0', 'a1', 'a2'].map(async (name) => (await stat(path.join(dir, 'store', 'archive', name))).mtimeMs),
    );
    expect(written[2]).toBeLessThan(written[1]!);
    expect(written[1]).toBeLessThan(written[0]!);
    const rest = await results('backfill', { class: 'archive' });
    expect(rest.at(-1)).toMatchObject({ done: true, total: 3, uploaded: 3 });
    expect(rest.at(-1)?.checkpoint).toBe(new Date(created[3]!).toISOString());
  });

  it('prefetch restores durable-only flights into the first tier after a restart', async () => {
    await app.stop();
    app = await startNode(loadConfigFile(file).config, silentLogger, systemClock, { configFile: file });
    client.close();
    client = new FlightClient(location());
    const before = app.manager.stats().classes.reports!;
    expect(before.durableOnly).toBe(before.flights);
    expect(before.flights).toBeGreaterThanOrEqual(20);
    const progress = await results('prefetch', { prefix: 'reports', concurrency: 4 });
    expect(progress.at(-1)).toMatchObject({ kind: 'prefetch', done: true, restored: before.flights, failed: 0 });
    expect(app.manager.stats().classes.reports?.durableOnly).toBe(0);
  });
});

describe('a backfill whose store goes down (moto stopped), driven by tierflight admin', () => {
  let dir: string;
  let file: string;
  let port: number;
  let app: RunningNode;
  let moto: Moto;
  const s3Config = (durable: boolean) =>
    config(port, dir, false)
      .replace('shutdownGrace: 2s\n', `shutdownGrace: 2s\n  spool: ${dir}/spool\n`)
      .replace(
        'durableStores:\n  - { id: files, type: filesystem, path: ' + dir + '/store }',
        `durableStores:\n  - { id: s3, type: s3, bucket: jobs, endpoint: "${moto.endpoint}", forcePathStyle: true }`,
      )
      .replace(
        '    prefix: reports\n',
        `    prefix: reports\n${durable ? '    durability: weak\n    durableStore: s3\n' : ''}`,
      );

  beforeAll(async () => {
    moto = await startMoto();
    await moto.createBucket('jobs');
    dir = await mkdtemp(path.join(os.tmpdir(), 'tierflight-jobs-s3-'));
    file = path.join(dir, 'tierflight.yaml');
    port = await freePort();
    await writeFile(file, s3Config(false));
    app = await startNode(loadConfigFile(file).config, silentLogger, systemClock, { configFile: file });
  });
  afterAll(async () => {
    await app?.stop();
    await moto?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('pauses and says so while the store is down, then finishes when it is back', async () => {
    const location = `grpc://127.0.0.1:${port}`;
    await runPyClient('ops', location, [
      '--script',
      JSON.stringify(Array.from({ length: 12 }, (_, i) => ({ op: 'put', path: `reports/s${i}`, kib: 32, seed: i }))),
    ]);
    await writeFile(file, s3Config(true));
    expect(app.reload()).toBe(true);
    await moto.stop();
    const [node, ...cli] = TIERFLIGHT_CLI as [string, ...string[]];
    const child = spawn(node, [...cli, 'admin', '--server', location, '--json', 'backfill', 'reports'], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const lines: Record<string, unknown>[] = [];
    let buffered = '';
    child.stdout.on('data', (d: Buffer) => {
      buffered += d.toString();
      const parts = buffered.split('\n');
      buffered = parts.pop() ?? '';
      for (const line of parts) if (line.trim()) lines.push(JSON.parse(line) as Record<string, unknown>);
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    await until('the job to pause', () => lines.some((l) => l.state === 'paused'), 60_000);
    expect(lines.find((l) => l.state === 'paused')?.message).toMatch(/paused: the store cannot be reached/);
    await moto.restart();
    await moto.createBucket('jobs');
    expect(await exited).toBe(0);
    expect(lines.at(-1)).toMatchObject({ done: true, state: 'done', total: 12, uploaded: 12, failed: 0 });
    expect(await moto.keys('jobs', 'reports/')).toHaveLength(12);
  });

  it('a server restart mid-backfill loses no flight: the rest are spooled, uploaded at start, and resume counts them', async () => {
    const location = `grpc://127.0.0.1:${port}`;
    const flights = Array.from({ length: 40 }, (_, i) => ({ path: `reports/restart${i}`, kib: 256, seed: 500 + i }));
    await writeFile(file, s3Config(false));
    expect(app.reload()).toBe(true);
    await runPyClient('ops', location, ['--script', JSON.stringify(flights.map((f) => ({ op: 'put', ...f })))]);
    await writeFile(file, s3Config(true));
    expect(app.reload()).toBe(true);
    const before = (await moto.keys('jobs', 'reports/restart')).length;
    expect(before).toBe(0);
    const client = new FlightClient(location);
    const seen: JobProgress[] = [];
    let stopping: Promise<void> | undefined;
    try {
      for await (const result of client.doAction('backfill', { class: 'reports', concurrency: 1 })) {
        const progress = JSON.parse(result.toString()) as JobProgress;
        seen.push(progress);
        // A graceful restart (what SIGTERM does) once a few flights are done.
        if (!stopping && progress.processed >= 3) stopping = app.stop();
      }
    } finally {
      client.close();
    }
    await stopping;
    const last = seen.at(-1)!;
    expect(last).toMatchObject({ done: true, state: 'stopped', total: 40, failed: 0 });
    expect(last.processed).toBeLessThan(last.total);
    expect(last.checkpoint).not.toBeNull();
    const spooled = await readdir(path.join(dir, 'spool', 's3', 'reports'));
    expect(spooled.length).toBe(last.total - last.processed);

    app = await startNode(loadConfigFile(file).config, silentLogger, systemClock, { configFile: file });
    const again = new FlightClient(location);
    const resumed = await again.action<JobProgress>('backfill', { class: 'reports', resume: last.checkpoint });
    // The spooled flights are uploaded from the start on; the resumed job counts those still
    // on their way. Either way every one of them reaches the store, once.
    expect(resumed.at(-1)).toMatchObject({ done: true, state: 'done', failed: 0 });
    expect(resumed.at(-1)!.uploaded).toBe(resumed.at(-1)!.total);
    expect(resumed.at(-1)!.total).toBeLessThanOrEqual(spooled.length);
    await until(
      'the spool to empty',
      async () => (await readdir(path.join(dir, 'spool', 's3', 'reports')).catch(() => [])).length === 0,
      30_000,
    );
    expect(await moto.keys('jobs', 'reports/restart')).toHaveLength(40);
    const second = await again.action<JobProgress>('backfill', { class: 'reports' });
    again.close();
    expect(second.at(-1)).toMatchObject({ done: true, total: 0 });
    // Every flight reads back bit-exact after the restart.
    const checks = (await runPyClient('ops', location, [
      '--script',
      JSON.stringify(flights.map((f) => ({ op: 'check', ...f }))),
    ])) as { ok: boolean; problems: string[] }[];
    expect(checks.filter((c) => !c.ok)).toEqual([]);
    expect(checks).toHaveLength(40);
  });
});
