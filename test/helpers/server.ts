import net from 'node:net';
import { startApp, type App } from '../../src/app.js';
import { parseConfigText } from '../../src/config/load.js';
import { systemClock, type Clock } from '../../src/util/clock.js';
import { silentLogger } from '../../src/util/log.js';

export interface TestServer {
  app: App;
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
 * Starts a real Tierflight (the same startApp `tierflight serve` uses) on a free loopback
 * port. `body` is the YAML after the server section; the server section is generated.
 */
export async function startTestServer(
  body: string,
  options: { clock?: Clock; server?: string } = {},
): Promise<TestServer> {
  const port = await freePort();
  const yaml =
    `server:\n  listen: 127.0.0.1:${port}\n  advertise: grpc+tcp://127.0.0.1:${port}\n` +
    `  shutdownGrace: 2s\n${options.server ?? ''}${body}`;
  const config = parseConfigText(yaml, 'test.yaml');
  const app = await startApp(config, silentLogger, options.clock ?? systemClock);
  return { app, port, location: `grpc://127.0.0.1:${port}`, stop: () => app.stop() };
}

export const MEMORY_ONLY = (capacity = '64MiB'): string => `storageTypes:
  memory: { capacity: ${capacity} }
storageClasses:
  - name: default
    prefix: ""
    tiers:
      - { storage: memory }
`;
