import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FlightClient } from '../../src/client/flight-client.js';
import { owners } from '../../src/cluster/placement.js';
import { TIERFLIGHT_CLI } from '../helpers/cli.js';
import { runPyClient } from '../helpers/python.js';
import { freePort } from '../helpers/server.js';
import { until } from '../helpers/until.js';
import { ROOT } from '../setup/python-env.js';

/**
 * `tierflight serve --workers 2` (DESIGN §8): two processes as a local cluster on the listen
 * port and the next, each with half of every capacity and its own tier folder; pyarrow puts
 * through the listen port and reads where the endpoints point; reservations (in memory) work
 * through either port; SIGTERM stops both.
 */
describe('serve --workers 2', () => {
  let dir: string;
  let port: number;
  let child: ChildProcess;
  let output = '';
  const location = (i: number) => `grpc+tcp://127.0.0.1:${port + i}`;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'tierflight-workers-'));
    port = await freePort();
    const file = path.join(dir, 'tierflight.yaml');
    await writeFile(
      file,
      `storageTypes:
  memory: { capacity: 64MiB }
  disk: { path: ${dir}/disk, capacity: 1GiB }
storageClasses:
  - { name: scratch, prefix: scratch, tiers: [{ storage: memory }] }
  - { name: default, prefix: "", tiers: [{ storage: memory }, { storage: disk }] }
`,
    );
    const [node, ...cli] = TIERFLIGHT_CLI as [string, ...string[]];
    child = spawn(node, [...cli, 'serve', '--config', file, '--listen', `127.0.0.1:${port}`, '--workers', '2'], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    await new Promise<void>((resolve, reject) => {
      child.stdout?.on('data', (d: Buffer) => {
        output += d.toString();
        if ((output.match(/"msg":"Tierflight ready"/g) ?? []).length === 2) resolve();
      });
      child.on('exit', (code) => reject(new Error(`serve --workers exited ${code}: ${output}`)));
    });
    // The workers start together: until each has reached the other.
    await until(
      'the workers to see each other up',
      async () => {
        for (const i of [0, 1]) {
          const client = new FlightClient(location(i));
          const [report] = await client
            .action<{ members: { state: string }[] }>('cluster')
            .catch(() => [undefined])
            .finally(() => client.close());
          if (!report?.members.every((m) => m.state === 'up' || m.state === 'self')) return false;
        }
        return true;
      },
      20_000,
    );
  }, 60_000);

  afterAll(async () => {
    if (child.exitCode === null) child.kill('SIGKILL');
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('places flights on the worker that owns them, and pyarrow reads each where its endpoint points', async () => {
    const puts = Array.from({ length: 20 }, (_, i) => ({ op: 'put', path: `w/p${i}`, kib: 64, seed: i }));
    const acked = await runPyClient<{ ok?: boolean }[]>('ops', location(0), ['--script', JSON.stringify(puts)]);
    expect(acked.filter((a) => !a.ok)).toEqual([]);
    const members = [{ name: 'worker-0' }, { name: 'worker-1' }];
    for (const i of [0, 1]) {
      const client = new FlightClient(location(i));
      const [stats] = await client.action<{ flights: number; storageTypes: { memory: { capacity: number } } }>('stats');
      client.close();
      // Each worker holds the paths it owns, in half the memory.
      expect(stats!.flights).toBe(puts.filter((p) => owners(p.path, members, 1)[0]!.name === `worker-${i}`).length);
      expect(stats!.storageTypes.memory.capacity).toBe(32 * 1024 * 1024);
    }
    expect((await readdir(path.join(dir, 'disk'))).sort()).toEqual(['worker-0', 'worker-1']);
    const checks = await runPyClient<{ ok: boolean; endpoints: number }[]>('ops', location(0), [
      '--script',
      JSON.stringify(puts.map((p) => ({ ...p, op: 'check' }))),
    ]);
    expect(checks.filter((c) => !c.ok)).toEqual([]);
    const info = await new FlightClient(location(0)).getFlightInfo(
      puts.find((p) => owners(p.path, members, 1)[0]!.name === 'worker-1')!.path,
    );
    expect(info.endpoints[0]?.locations).toEqual([location(1)]);
  });

  it('reads a dataset whole at its home, each batch with its app_metadata, the partitions the other worker holds relayed', async () => {
    const members = [{ name: 'worker-0' }, { name: 'worker-1' }];
    const count = 4;
    const dataset = 'ds/meta';
    // Its home answers the dataset's plain path; partitions are placed by `<dataset>#<i>`.
    const home = Number(owners(dataset, members, 1)[0]!.name.slice('worker-'.length));
    const held = Array.from({ length: count }, (_, i) => owners(`${dataset}#${i}`, members, 1)[0]!.name);
    expect(held.filter((w) => w !== `worker-${home}`).length).toBeGreaterThan(0);
    const puts = Array.from({ length: count }, (_, i) => ({ op: 'put-part', path: dataset, seed: 9, index: i, count }));
    const acked = await runPyClient<{ ok?: boolean }[]>('ops', location(0), ['--script', JSON.stringify(puts)]);
    expect(acked.filter((a) => !a.ok)).toEqual([]);
    const [read] = await runPyClient<{ equal: boolean; metas: (string | null)[] }[]>('ops', location(home), [
      '--script',
      JSON.stringify([{ op: 'read-plain', path: dataset, seed: 9, count }]),
    ]);
    expect(read).toEqual({
      equal: true,
      metas: Array.from({ length: count }, (_, i) => [`p${i}-b0`, `p${i}-b1`]).flat(),
    });
  });

  it('keeps reservations at the owning worker, whichever port they are made through', async () => {
    const p = Array.from({ length: 20 }, (_, i) => `r/x${i}`).find(
      (x) => owners(x, [{ name: 'worker-0' }, { name: 'worker-1' }], 1)[0]!.name === 'worker-1',
    )!;
    const a = new FlightClient(location(0));
    const b = new FlightClient(location(1));
    const [first] = await a.action<{ status: string }>('reserve', { path: p, owner: 'alice', heartbeatSeconds: 30 });
    const [second] = await b.action<{ status: string; owner: string }>('reserve', {
      path: p,
      owner: 'bob',
      heartbeatSeconds: 30,
    });
    expect(first).toMatchObject({ status: 'acquired' });
    expect(second).toMatchObject({ status: 'held', owner: 'alice' });
    expect(await a.action('release', { path: p, owner: 'alice' })).toEqual([{ released: true }]);
    const [third] = await a.action<{ status: string }>('reserve', { path: p, owner: 'bob', heartbeatSeconds: 30 });
    expect(third).toMatchObject({ status: 'acquired' });
    a.close();
    b.close();
  });

  it('loses a dataset whole when another worker evicts one of its partitions, and says so through either port', async () => {
    const members = [{ name: 'worker-0' }, { name: 'worker-1' }];
    const ownerOf = (key: string) => owners(key, members, 1)[0]!.name;
    // A dataset whose home holds none of its partitions: only the other worker's report can lose it.
    const dataset = Array.from({ length: 200 }, (_, i) => `scratch/ds-${i}`).find((d) =>
      [0, 1].every((i) => ownerOf(`${d}#${i}`) !== ownerOf(d)),
    )!;
    const script = (op: string) => [
      '--path',
      dataset,
      '--script',
      JSON.stringify({ op, count: 2, seed: 3, indexes: [0, 1], locations: [location(0), location(1)] }),
    ];
    expect(await runPyClient('cluster-dataset', location(0), script('write'))).toEqual({ errors: [] });
    for (const i of [0, 1]) {
      expect(await runPyClient('cluster-dataset', location(i), script('read'))).toMatchObject({
        equal: true,
        by_location_equal: true,
      });
    }
    // Memory-only flights twice the size of the memory of both workers: the dataset's partitions are evicted.
    const fill = Array.from({ length: 128 }, (_, i) => ({ op: 'put', path: `scratch/fill-${i}`, kib: 1024, seed: i }));
    const acked = await runPyClient<{ ok?: boolean }[]>('ops', location(0), ['--script', JSON.stringify(fill)]);
    expect(acked.filter((a) => !a.ok)).toEqual([]);
    for (const i of [0, 1]) {
      await until(
        `the dataset to read as lost through port ${i}`,
        async () => {
          const out = await runPyClient<{ error?: { message: string } }>(
            'cluster-dataset',
            location(i),
            script('read'),
          );
          return /lost partition [01] of 2 \(evicted\); recompute it/.test(out.error?.message ?? '');
        },
        10_000,
      );
    }
  });

  it('stops every worker on SIGTERM', async () => {
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect((output.match(/"msg":"stopped"/g) ?? []).length).toBe(2);
  });
});
