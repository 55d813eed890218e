import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FlightClient } from '../../src/client/flight-client.js';
import { owners } from '../../src/cluster/placement.js';
import { FROM_NODE_HEADER } from '../../src/flight/cluster-port.js';
import { startDns, type TestDns } from '../helpers/dns.js';
import { runPyClient } from '../helpers/python.js';
import { startRedis, type RedisServer } from '../helpers/redis.js';
import { freePort, spawnServer, type ServerProcess } from '../helpers/server.js';
import { until } from '../helpers/until.js';

/**
 * Members from DNS (DESIGN §8, a Kubernetes headless service): three nodes on 127.0.0.1-3
 * with one port, a DNS server the test controls, re-resolved every 300 ms. Nodes join as
 * their addresses appear and leave as they go.
 */
const NAME = 'tierflight.test.local';
const HOSTS = ['127.0.0.1', '127.0.0.2', '127.0.0.3'] as const;

describe('cluster members discovered from DNS', () => {
  let dir: string;
  let dns: TestDns;
  let redis: RedisServer;
  let port: number;
  const nodes = new Map<string, ServerProcess>();
  const member = (host: string) => `${host}:${port}`;
  const location = (host: string) => `grpc+tcp://${host}:${port}`;

  const seen = async (host: string): Promise<Record<string, string>> => {
    const client = new FlightClient(location(host));
    try {
      const [report] = await client.action<{ members: { name: string; state: string }[] }>('cluster', {});
      return Object.fromEntries(report!.members.map((m) => [m.name, m.state]));
    } finally {
      client.close();
    }
  };
  /** Until every listed node sees exactly the listed members, up. */
  const agree = (hosts: readonly string[]) =>
    until(
      `nodes ${hosts.join(', ')} to see exactly each other`,
      async () => {
        for (const h of hosts) {
          const view = await seen(h).catch(() => undefined);
          const want = Object.fromEntries(hosts.map((o) => [member(o), o === h ? 'self' : 'up']));
          if (JSON.stringify(view, Object.keys(view ?? {}).sort()) !== JSON.stringify(want, Object.keys(want).sort()))
            return false;
        }
        return true;
      },
      20_000,
    );

  const start = async (host: string) => {
    const file = path.join(dir, `${host}.yaml`);
    await writeFile(
      file,
      `storageTypes:
  memory: { capacity: 64MiB }
storageClasses:
  - { name: default, prefix: "", tiers: [{ storage: memory }] }
reservations:
  store: { type: redis, url: "${redis.url}" }
cluster:
  self: "${member(host)}"
  discover: { dns: ${NAME}, port: ${port}, every: 300ms, resolver: "${dns.address}" }
  probeEvery: 300ms
`,
    );
    nodes.set(host, await spawnServer(file, { host, port }));
  };

  beforeAll(async () => {
    [dns, redis] = await Promise.all([startDns(), startRedis()]);
    port = await freePort();
    dir = await mkdtemp(path.join(os.tmpdir(), 'tierflight-dns-'));
    dns.records.set(NAME, [HOSTS[0], HOSTS[1]]);
    await Promise.all([start(HOSTS[0]), start(HOSTS[1])]);
  }, 60_000);

  afterAll(async () => {
    for (const n of nodes.values()) n.process.kill('SIGKILL');
    await dns?.stop();
    await redis?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('finds the members DNS lists, adds one that appears, and drops one that goes', async () => {
    await agree([HOSTS[0], HOSTS[1]]);
    // A third pod: started, then listed.
    await start(HOSTS[2]);
    dns.records.set(NAME, [...HOSTS]);
    await agree(HOSTS);
    // Placement by the discovered names: a put through the first node lands on the owner.
    const members = HOSTS.map((h) => ({ name: member(h) }));
    const puts = Array.from({ length: 15 }, (_, i) => ({ op: 'put', path: `d/p${i}`, kib: 8, seed: i }));
    const acked = await runPyClient<{ ok?: boolean }[]>('ops', location(HOSTS[0]), ['--script', JSON.stringify(puts)]);
    expect(acked.filter((a) => !a.ok)).toEqual([]);
    for (const h of HOSTS) {
      const client = new FlightClient(location(h));
      const held = (await client.listFlightMessages('d', { [FROM_NODE_HEADER]: 'test' }))
        .map((f) => f.flight_descriptor.path.join('/'))
        .sort();
      client.close();
      const want = puts.filter((p) => owners(p.path, members, 1)[0]!.name === member(h)).map((p) => p.path);
      expect(held).toEqual(want.sort());
    }
    // The second pod goes out of DNS (scaled down): the others stop counting it.
    dns.records.set(NAME, [HOSTS[0], HOSTS[2]]);
    await agree([HOSTS[0], HOSTS[2]]);
    expect(dns.queries).toBeGreaterThan(6);
  });
});
