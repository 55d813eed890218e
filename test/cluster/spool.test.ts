import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedis, type RedisServer } from '../helpers/redis.js';
import { freePort, startTestServer, type TestServer } from '../helpers/server.js';

/**
 * Every node has a spool of its own by default: three cluster nodes sharing a filesystem
 * durable store, naming no spool and no tier folder, all start (each default spool is
 * named after its member), and so do three on one machine with tier folders side by side.
 */
describe('default spools in a cluster', () => {
  let redis: RedisServer;
  let dir: string;
  const servers: TestServer[] = [];
  beforeAll(async () => {
    redis = await startRedis();
    dir = await mkdtemp(path.join(os.tmpdir(), 'tierflight-cluster-spool-'));
  });
  afterAll(async () => {
    for (const s of servers) await s.stop();
    await redis?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const startNodes = async (tiers: (name: string) => string): Promise<TestServer[]> => {
    const names = ['a', 'b', 'c'];
    const ports = await Promise.all(names.map(() => freePort()));
    const members = names
      .map((n, i) => `    - { name: ${n}, location: "grpc+tcp://127.0.0.1:${ports[i]}" }`)
      .join('\n');
    const started: TestServer[] = [];
    for (const [i, name] of names.entries()) {
      const server = await startTestServer(
        `${tiers(name)}durableStores:
  - { id: shared, type: filesystem, path: ${dir}/store }
storageClasses:
  - { name: weak, prefix: "", durability: weak, durableStore: shared, tiers: [{ storage: memory }] }
reservations:
  store: { type: redis, url: "${redis.url}" }
cluster:
  self: ${name}
  probeEvery: 300ms
  members:
${members}
`,
        { port: ports[i]! },
      );
      servers.push(server);
      started.push(server);
    }
    return started;
  };

  it('gives nodes sharing a filesystem store, with no tier folder, a default spool each', async () => {
    const nodes = await startNodes(() => 'storageTypes:\n  memory: { capacity: 16MiB }\n');
    const home = path.join(process.env.XDG_STATE_HOME!, 'tierflight');
    expect(nodes.map((n) => n.app.spool)).toEqual(['a', 'b', 'c'].map((m) => path.join(home, `spool-${m}`)));
    for (const n of nodes.splice(0)) await n.stop();
    servers.length = 0;
  });

  it('gives nodes whose tier folders sit side by side a spool each beside them', async () => {
    const nodes = await startNodes(
      (name) =>
        `storageTypes:\n  memory: { capacity: 16MiB }\n  disk: { path: ${dir}/tiers/disk-${name}, capacity: 16MiB }\n`,
    );
    expect(nodes.map((n) => n.app.spool)).toEqual(['a', 'b', 'c'].map((m) => path.join(dir, 'tiers', `spool-${m}`)));
  });
});
