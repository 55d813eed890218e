import { createWriteStream } from 'node:fs';
import { spawn, type ChildProcess } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { startNode, type RunningNode } from '../../src/node/start.js';
import { parseConfigText } from '../../src/config/load.js';
import { systemClock, type Clock } from '../../src/core/clock.js';
import { silentLogger } from '../../src/core/log.js';
import { ROOT } from '../setup/python-env.js';

export interface TestServer {
  app: RunningNode;
  location: string;
  port: number;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      srv.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/**
 * Starts a real Tierflight (the same startNode `tierflight serve` uses) on a free loopback
 * port. `body` is the YAML after the server section; the server section is generated.
 */
export async function startTestServer(
  body: string,
  options: { clock?: Clock; server?: string; port?: number; advertise?: string } = {},
): Promise<TestServer> {
  const port = options.port ?? (await freePort());
  const advertise = options.advertise ?? `grpc+tcp://127.0.0.1:${port}`;
  const yaml =
    `server:\n  listen: 127.0.0.1:${port}\n  advertise: ${advertise}\n` +
    `  shutdownGrace: 2s\n${options.server ?? ''}${body}`;
  const config = parseConfigText(yaml, 'test.yaml');
  const app = await startNode(config, silentLogger, options.clock ?? systemClock);
  return { app, port, location: `grpc://127.0.0.1:${port}`, stop: () => app.stop() };
}

/** The flight files in a tier directory (not the directory lock's files). */
export async function flightFiles(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((f) => f.startsWith('flight-'));
}

export const MEMORY_ONLY = (capacity = '64MiB'): string => `storageTypes:
  memory: { capacity: ${capacity} }
storageClasses:
  - name: default
    prefix: ""
    tiers:
      - { storage: memory }
`;

export interface ServerProcess {
  process: ChildProcess;
  location: string;
}

/**
 * Runs `tierflight serve --config FILE` as its own process (so a test can kill it), on a
 * free port, and resolves once it listens. `fileSizeBlocks` runs it under `ulimit -f`
 * (POSIX sh counts 512-byte blocks), so its file writes fail the way a full disk makes them.
 */
export async function spawnServer(
  configFile: string,
  options: { fileSizeBlocks?: number; port?: number; host?: string } = {},
): Promise<ServerProcess> {
  const port = options.port ?? (await freePort());
  const host = options.host ?? '127.0.0.1';
  const args = [
    '--import',
    'tsx',
    path.join(ROOT, 'src/cli/main.ts'),
    'serve',
    '--config',
    configFile,
    '--listen',
    `${host}:${port}`,
  ];
  const child =
    options.fileSizeBlocks === undefined
      ? spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn('sh', ['-c', `ulimit -f ${options.fileSizeBlocks} && exec "$0" "$@"`, process.execPath, ...args], {
          cwd: ROOT,
          stdio: ['ignore', 'pipe', 'pipe'],
        });
  // TIERFLIGHT_TEST_LOG_DIR=dir keeps each spawned server's log there (debugging a test).
  const logDir = process.env.TIERFLIGHT_TEST_LOG_DIR;
  if (logDir) child.stdout?.pipe(createWriteStream(path.join(logDir, `server-${port}.log`), { flags: 'a' }));
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('"msg":"Tierflight ready"')) resolve();
    });
    child.on('exit', (code) => reject(new Error(`server exited ${code}: ${out}`)));
  });
  return { process: child, location: `grpc://${host}:${port}` };
}
