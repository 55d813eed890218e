import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Moto } from '../helpers/moto.js';
import { runPyClient } from '../helpers/python.js';
import { freePort, startTestServer, type TestServer } from '../helpers/server.js';
import { startProxiedMoto, type TcpProxy } from '../helpers/tcp-proxy.js';
import { until } from '../helpers/until.js';

/**
 * No loss on a graceful stop (DESIGN §2, §7): weak flights whose upload cannot finish
 * within shutdownGrace go to the spool, and the next start serves and uploads them. The
 * store is a real S3-compatible server (moto) behind a TCP proxy the test cuts.
 */
const BUCKET = 'tierflight-spool';
let moto: Moto;
let proxy: TcpProxy;
let dir: string;
let server: TestServer | undefined;

/** A weak S3 class over a memory tier only; `spool` set, or left to the default. */
const start = (options: { spool?: boolean; port?: number } = {}) =>
  startTestServer(
    `durableStores:
  - { id: s3main, type: s3, bucket: ${BUCKET}, region: us-east-1, endpoint: ${proxy.endpoint}, forcePathStyle: true }
storageTypes:
  memory: { capacity: 64MiB }
storageClasses:
  - { name: weak, prefix: "", durability: weak, durableStore: s3main, durablePrefix: tf/, tiers: [{ storage: memory }] }
`,
    {
      ...(options.spool === false ? {} : { server: `  spool: ${dir}/spool\n` }),
      ...(options.port ? { port: options.port } : {}),
    },
  );
const ops = (s: TestServer, script: unknown[]) =>
  runPyClient<Record<string, unknown>[]>('ops', s.location, ['--script', JSON.stringify(script)]);
const FLIGHTS = Array.from({ length: 20 }, (_, i) => ({ path: `sp/${i}`, kib: 20 + i, seed: 100 + i }));

/** Every object file under the spool, relative to it (not the directory lock's files). */
async function spooled(spool = path.join(dir, 'spool')): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string, rel: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      if (e.isDirectory()) await walk(path.join(d, e.name), `${rel}${e.name}/`);
      else if (rel !== '') out.push(`${rel}${e.name}`);
    }
  };
  await walk(spool, '');
  return out.sort();
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tierflight-spool-'));
  ({ moto, proxy } = await startProxiedMoto(BUCKET));
});
afterAll(async () => {
  await server?.stop();
  await proxy?.close();
  await moto?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('graceful shutdown with the store down', () => {
  it('spools weak flights it could not upload, and the next start serves and uploads every one', async () => {
    server = await start();
    await proxy.down();
    const puts = await ops(
      server,
      FLIGHTS.map((f) => ({ op: 'put', ...f })),
    );
    expect(puts.every((p) => p.ok === true)).toBe(true);
    await server.stop(); // waits shutdownGrace (2 s), then spools
    server = undefined;
    expect(await spooled()).toEqual(FLIGHTS.map((f) => `s3main/tf/${f.path}`).sort());
    expect(await moto.keys(BUCKET, 'tf/')).toEqual([]);

    await proxy.up();
    server = await start();
    const back = await ops(
      server,
      FLIGHTS.map((f) => ({ op: 'check', ...f })),
    );
    expect(back.map((b) => b.problems)).toEqual(FLIGHTS.map(() => []));
    await until('every spooled flight to reach the store', async () => (await moto.keys(BUCKET, 'tf/')).length === 20);
    await until('the spool to empty', async () => (await spooled()).length === 0);
    server.app.manager.checkAccounting();
  });

  it('with no spool configured and no local directory at all, keeps them in the default spool of this node', async () => {
    const port = await freePort();
    server = await start({ spool: false, port });
    // The default: under $XDG_STATE_HOME (a temporary folder during the suite), named after the listen address.
    const spool = path.join(process.env.XDG_STATE_HOME!, 'tierflight', `spool-127.0.0.1-${port}`);
    expect(server.app.spool).toBe(spool);
    await proxy.down();
    const flights = FLIGHTS.slice(0, 8).map((f) => ({ ...f, path: `default/${f.path}` }));
    const puts = await ops(
      server,
      flights.map((f) => ({ op: 'put', ...f })),
    );
    expect(puts.every((p) => p.ok === true)).toBe(true);
    await server.stop();
    server = undefined;
    expect(await spooled(spool)).toEqual(flights.map((f) => `s3main/tf/${f.path}`).sort());

    await proxy.up();
    server = await start({ spool: false, port });
    const back = await ops(
      server,
      flights.map((f) => ({ op: 'check', ...f })),
    );
    expect(back.map((b) => b.problems)).toEqual(flights.map(() => []));
    await until(
      'every spooled flight to reach the store',
      async () => (await moto.keys(BUCKET, 'tf/default/')).length === 8,
    );
    await until('the spool to empty', async () => (await spooled(spool)).length === 0);
  });
});
