import { spawn } from 'node:child_process';
import net from 'node:net';
import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { ClusterNode } from '../../src/cluster/cluster-node.js';
import { startNode, type RunningNode } from '../../src/node/start.js';
import { parseConfigText } from '../../src/config/load.js';
import { systemClock } from '../../src/core/clock.js';
import { createLogger, silentLogger } from '../../src/core/log.js';
import { TIERFLIGHT_CLI } from '../helpers/cli.js';
import { encodeRequest, RawFlightClient } from '../helpers/raw-client.js';
import { freePort } from '../helpers/server.js';
import { ROOT } from '../setup/python-env.js';

/** A server whose start waits on a durable store that accepts connections and never answers, until `hangUp`. */
async function startingServer() {
  const sockets = new Set<net.Socket>();
  const silent = net.createServer((s) => sockets.add(s)).listen(0, '127.0.0.1');
  await new Promise((r) => silent.once('listening', r));
  const storePort = (silent.address() as net.AddressInfo).port;
  const port = await freePort();
  const config = parseConfigText(
    `server:\n  listen: 127.0.0.1:${port}\n` +
      `durableStores:\n  - { id: s3, type: s3, bucket: b, region: us-east-1, endpoint: http://127.0.0.1:${storePort}, forcePathStyle: true }\n` +
      `storageTypes:\n  memory: { capacity: 16MiB }\n` +
      `storageClasses:\n  - { name: d, prefix: "", durability: weak, durableStore: s3, tiers: [{ storage: memory }] }\n`,
    'starting.yaml',
  );
  process.env.AWS_ACCESS_KEY_ID ??= 'test';
  process.env.AWS_SECRET_ACCESS_KEY ??= 'test';
  const starting = startNode(config, silentLogger);
  return {
    port,
    location: `grpc://127.0.0.1:${port}`,
    starting,
    hangUp(): void {
      for (const s of sockets) s.destroy();
      silent.close();
    },
  };
}

/** Resolves once `text()` matches, polling. */
async function until(text: () => string, pattern: RegExp): Promise<void> {
  for (let i = 0; i < 600 && !pattern.test(text()); i++) await new Promise((r) => setTimeout(r, 50));
  expect(text()).toMatch(pattern);
}

/**
 * A server answers calls only once it is ready: while it still recovers durable flights
 * (here from a store that accepts connections and never answers), every call gets
 * UNAVAILABLE rather than a wrong NOT_FOUND or a write into a tier about to be wiped.
 */
describe('a server still starting', () => {
  it('answers every call UNAVAILABLE until it is ready, then serves', async () => {
    const server = await startingServer();
    let app: RunningNode | undefined;
    void server.starting.then((a) => (app = a));
    const raw = new RawFlightClient(server.location);
    try {
      // The Flight port is bound before the flights are recovered.
      let out = await raw.unary('GetFlightInfo', encodeRequest.descriptor({ type: 'PATH', path: ['x'] }));
      for (let i = 0; out.code === status.UNAVAILABLE && /connect|No connection/i.test(out.details) && i < 100; i++) {
        await new Promise((r) => setTimeout(r, 50));
        out = await raw.unary('GetFlightInfo', encodeRequest.descriptor({ type: 'PATH', path: ['x'] }));
      }
      expect(out).toEqual({
        code: status.UNAVAILABLE,
        details: 'Tierflight is starting (recovering flights) [retry in 1 s]',
        results: [],
        retry: 'here;after=1000',
      });
      expect(app).toBeUndefined();
      // The store hangs up: recovery fails at once, the server serves without it.
      server.hangUp();
      await server.starting;
      const after = await raw.unary('GetFlightInfo', encodeRequest.descriptor({ type: 'PATH', path: ['x'] }));
      expect(after).toMatchObject({
        code: status.UNAVAILABLE,
        details: expect.stringMatching(/cannot be reached yet.*\[retry in 1 s\]$/),
        retry: 'here;after=1000',
      });
      expect(app?.manager.degradedStores).toEqual(['s3']);
    } finally {
      raw.close();
      server.hangUp();
      await (await server.starting.catch(() => undefined))?.stop();
    }
  });

  it('tells callers to retry in 1 s (x-tierflight-retry), and the admin CLI and a cluster node follow it', async () => {
    const server = await startingServer();
    const lines: string[] = [];
    const log = createLogger({ level: 'debug', destination: { write: (l: string) => lines.push(l) } as never });
    const config = parseConfigText(
      `server: { listen: 127.0.0.1:0 }\nstorageTypes:\n  memory: { capacity: 1MiB }\n` +
        `storageClasses:\n  - { name: m, prefix: "", tiers: [{ storage: memory }] }\n` +
        `reservations:\n  store: { type: redis, url: "redis://127.0.0.1:1" }\n` +
        `cluster:\n  self: a\n  members:\n    - { name: a, location: "grpc://127.0.0.1:1" }\n    - { name: b, location: "${server.location}" }\n`,
      'cluster.yaml',
    );
    const node = new ClusterNode(config.cluster!, systemClock, log);
    let stderr = '';
    try {
      const raw = new RawFlightClient(server.location);
      for (let i = 0; i < 100; i++) {
        const out = await raw.unary('GetFlightInfo', encodeRequest.descriptor({ type: 'PATH', path: ['x'] }));
        if (out.retry === 'here;after=1000') break;
        await new Promise((r) => setTimeout(r, 50));
      }
      raw.close();
      // A member's read and an operator's `ls`, both while the server is still starting.
      const listed = node.listFlights({ name: 'b', location: server.location, self: false }, '', {});
      const [cli, ...args] = TIERFLIGHT_CLI as [string, ...string[]];
      const admin = spawn(cli, [...args, 'admin', '--server', `grpc+tcp://127.0.0.1:${server.port}`, '--json', 'ls'], {
        cwd: ROOT,
      });
      admin.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      let stdout = '';
      admin.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      const exited = new Promise<number | null>((resolve) => admin.once('exit', resolve));
      await until(() => stderr, /retrying in 1 s \(try 2 of 3\)/);
      await until(() => lines.join(''), /a member said to retry: retrying/);
      expect(stderr).toBe(
        'tierflight admin ls: UNAVAILABLE: Tierflight is starting (recovering flights); retrying in 1 s (try 2 of 3)\n',
      );
      // The store hangs up: the server is ready (without it) and both tries succeed.
      server.hangUp();
      await server.starting;
      expect(await listed).toEqual([]);
      expect(await exited).toBe(0);
      expect(JSON.parse(stdout)).toEqual([]);
    } finally {
      server.hangUp();
      node.stop();
      await (await server.starting.catch(() => undefined))?.stop();
    }
  });
});
