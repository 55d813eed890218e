import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNode, type RunningNode } from '../../src/node/start.js';
import { hashPassword } from '../../src/auth/passwords.js';
import { FlightClient, FlightStatus } from '../../src/client/flight-client.js';
import { owners } from '../../src/cluster/placement.js';
import { loadConfigFile } from '../../src/config/load.js';
import { systemClock } from '../../src/core/clock.js';
import { silentLogger } from '../../src/core/log.js';
import { encapsulatedMessages } from '../../src/ipc/ipc-stream.js';
import { makeTestCerts, type TestCerts } from '../helpers/certs.js';
import { startRedis, type RedisServer } from '../helpers/redis.js';
import { freePort } from '../helpers/server.js';
import { until } from '../helpers/until.js';
import { tableFromArrays, tableToIPC } from 'apache-arrow';

/**
 * Two nodes over mutual TLS with users (DESIGN §7 and §8): node-to-node calls (probes,
 * forwarded puts, fanned-out deletes, merged lists) use the same TLS, the node's own
 * certificate and a node credential signed with the shared secret, and act with the
 * rights of the user they act for, never more.
 */
const SECRET = 'a-cluster-secret-that-is-long-enough-for-hs256-0123';

describe('a cluster over mutual TLS with users', () => {
  let certs: TestCerts;
  let dir: string;
  let redis: RedisServer;
  const apps: RunningNode[] = [];
  const ports: number[] = [];
  const location = (i: number) => `grpc+tls://127.0.0.1:${ports[i]}`;

  const clientAs = async (i: number, user: string, password: string): Promise<FlightClient> => {
    const tls = {
      ca: readFileSync(certs.ca),
      cert: readFileSync(certs.clients.ops!.cert),
      key: readFileSync(certs.clients.ops!.key),
    };
    const anonymous = new FlightClient(location(i), { tls });
    const basic = Buffer.from(`${user}:${password}`).toString('base64');
    const { authorization } = await anonymous.handshake({ authorization: `Basic ${basic}` });
    anonymous.close();
    return new FlightClient(location(i), { tls, headers: { authorization: authorization! } });
  };

  beforeAll(async () => {
    process.env.TIERFLIGHT_CLUSTER_SECRET = SECRET;
    certs = makeTestCerts(['ops']);
    redis = await startRedis();
    dir = await mkdtemp(path.join(os.tmpdir(), 'tierflight-secure-cluster-'));
    ports.push(await freePort(), await freePort());
    const hash = async (pw: string) => JSON.stringify(await hashPassword(pw));
    const users = `auth:
  tokenSecret: \${TIERFLIGHT_CLUSTER_SECRET}
  users:
    - { name: writer, passwordHash: ${await hash('w-pass')}, permissions: [{ prefix: team, access: [read, write, admin] }] }
    - { name: reader, passwordHash: ${await hash('r-pass')}, permissions: [{ prefix: team/a, access: [read] }] }
`;
    for (const i of [0, 1]) {
      const file = path.join(dir, `n${i}.yaml`);
      await writeFile(
        file,
        `server:
  listen: 127.0.0.1:${ports[i]}
  tls: { cert: ${certs.serverCert}, key: ${certs.serverKey}, clientCa: ${certs.ca}, requireClientCert: true }
storageTypes:
  memory: { capacity: 64MiB }
storageClasses:
  - { name: default, prefix: "", tiers: [{ storage: memory }] }
reservations:
  store: { type: redis, url: "${redis.url}" }
${users}cluster:
  self: n${i}
  probeEvery: 200ms
  members:
    - { name: n0, location: "${location(0)}" }
    - { name: n1, location: "${location(1)}" }
`,
      );
      apps.push(await startNode(loadConfigFile(file).config, silentLogger, systemClock, { configFile: file }));
    }
  }, 60_000);

  afterAll(async () => {
    for (const app of apps) await app.stop();
    await redis?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
    if (certs) await rm(certs.dir, { recursive: true, force: true });
  });

  it("probes each other over TLS with the node credential, forwards a user's put, and lists by the user's rights", async () => {
    // Probes need TLS with a client certificate and the node credential: without them both, never up.
    await until('n0 to see n1 up', () => apps[0]!.cluster?.membership.get('n1')?.state === 'up', 10_000);
    await until('n1 to see n0 up', () => apps[1]!.cluster?.membership.get('n0')?.state === 'up', 10_000);

    const table = tableToIPC(tableFromArrays({ x: Int32Array.from([1, 2, 3]) }), 'stream');
    const paths = ['team/a/1', 'team/a/2', 'team/b/1', 'team/b/2', 'team/c/1', 'team/c/2'];
    const members = [
      { name: 'n0', location: location(0) },
      { name: 'n1', location: location(1) },
    ];
    const forwarded = paths.filter((p) => owners(p, members, 1)[0]!.name === 'n1');
    expect(forwarded.length).toBeGreaterThan(0);
    const writer = await clientAs(0, 'writer', 'w-pass');
    // `cluster` needs admin, which writer lacks.
    await expect(writer.action('cluster')).rejects.toMatchObject({ code: FlightStatus.PERMISSION_DENIED });
    for (const p of paths) await writer.doPut(p, encapsulatedMessages(table));
    // Each flight is on its owner only.
    expect(
      apps[1]!.manager
        .list('team')
        .map((v) => v.path)
        .sort(),
    ).toEqual([...forwarded].sort());
    // The writer may not write outside team/: refused at the entry node, nothing forwarded.
    await expect(writer.doPut('other/x', encapsulatedMessages(table))).rejects.toMatchObject({
      code: FlightStatus.PERMISSION_DENIED,
    });

    // reader sees only team/a, from both nodes' flights.
    const reader = await clientAs(1, 'reader', 'r-pass');
    expect((await reader.listFlights('team')).map((f) => f.path.join('/')).sort()).toEqual(['team/a/1', 'team/a/2']);
    // reader may not delete: refused on every node, nothing deleted anywhere.
    await expect(reader.action('delete-prefix', { prefix: 'team' })).rejects.toMatchObject({
      code: FlightStatus.PERMISSION_DENIED,
    });
    expect(apps[0]!.manager.list('team').length + apps[1]!.manager.list('team').length).toBe(paths.length);
    const [deleted] = await writer.action<{ deleted: number }>('delete-prefix', { prefix: 'team/b' });
    expect(deleted).toEqual({ deleted: 2 });
    writer.close();
    reader.close();
    const metrics = await apps[0]!.metrics.registry.metrics();
    expect(metrics).toMatch(/^tierflight_cluster_members\{state="up"\} 1$/m);
    expect(metrics).toMatch(/^tierflight_cluster_member_up\{member="n1"\} 1$/m);
    expect(metrics).toMatch(
      new RegExp(`^tierflight_cluster_calls_total\\{method="DoPut",outcome="OK"\\} ${forwarded.length}$`, 'm'),
    );
    expect(metrics).toMatch(/^tierflight_cluster_calls_total\{method="probe",outcome="OK"\} [1-9]/m);
  });

  it('refuses a reload that changes the cluster (it needs a restart), and keeps serving', async () => {
    const file = path.join(dir, 'n0.yaml');
    const text = readFileSync(file, 'utf8');
    await writeFile(file, text.replace('probeEvery: 200ms', 'probeEvery: 1s'));
    try {
      expect(apps[0]!.reload()).toBe(false);
      expect(await apps[0]!.metrics.registry.metrics()).toMatch(
        /^tierflight_config_reloads_total\{outcome="refused"\} [1-9]/m,
      );
      expect(apps[0]!.cluster?.membership.get('n1')?.state).toBe('up');
    } finally {
      await writeFile(file, text);
    }
  });
});
