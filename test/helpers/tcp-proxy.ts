import net from 'node:net';
import { startMoto, type Moto } from './moto.js';

/**
 * A TCP proxy in front of a test server, to make a store unreachable and bring it back on
 * the same address: `down()` refuses new connections and cuts open ones, `up()` listens again.
 */
export interface TcpProxy {
  readonly port: number;
  readonly endpoint: string;
  down(): Promise<void>;
  up(): Promise<void>;
  close(): Promise<void>;
}

export async function startTcpProxy(targetPort: number): Promise<TcpProxy> {
  const sockets = new Set<net.Socket>();
  let server: net.Server | undefined;
  let port = 0;
  const listen = (): Promise<void> =>
    new Promise((resolve, reject) => {
      if (server) return resolve(); // already up
      const created = net.createServer((client) => {
        const upstream = net.connect(targetPort, '127.0.0.1');
        for (const s of [client, upstream]) {
          sockets.add(s);
          s.on('close', () => sockets.delete(s));
          s.on('error', () => s.destroy());
        }
        client.pipe(upstream).pipe(client);
        client.on('close', () => upstream.destroy());
        upstream.on('close', () => client.destroy());
      });
      created.once('error', reject);
      created.listen(port, '127.0.0.1', () => {
        server = created;
        port = (created.address() as net.AddressInfo).port;
        resolve();
      });
    });
  const down = (): Promise<void> =>
    new Promise((resolve) => {
      for (const s of sockets) s.destroy();
      if (!server) return resolve();
      server.close(() => resolve());
      server = undefined;
    });
  await listen();
  return {
    port,
    endpoint: `http://127.0.0.1:${port}`,
    down,
    up: listen,
    close: down,
  };
}

/** A moto S3 server with a bucket, behind a TCP proxy a test can cut (`proxy.down()`). */
export interface ProxiedMoto {
  moto: Moto;
  proxy: TcpProxy;
  stop(): Promise<void>;
}

export async function startProxiedMoto(bucket: string): Promise<ProxiedMoto> {
  const moto = await startMoto();
  await moto.createBucket(bucket);
  const proxy = await startTcpProxy(moto.port);
  return {
    moto,
    proxy,
    stop: async () => {
      await proxy.close();
      await moto.stop();
    },
  };
}
