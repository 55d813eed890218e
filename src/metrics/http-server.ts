import http from 'node:http';
import type { Registry } from 'prom-client';
import type { Logger } from '../core/log.js';

export interface MetricsServer {
  readonly port: number;
  stop(): Promise<void>;
}

/** What `/readyz` reports. */
export interface Readiness {
  ready: boolean;
  /** Durable stores the server serves without for now (their flights not recovered yet). */
  degraded: readonly string[];
}

/**
 * The operator's HTTP port: `/metrics` (Prometheus text format), `/healthz` (the process
 * is alive) and `/readyz` (the Flight server accepts calls; 503 before that and while
 * shutting down, so a load balancer drains it first). A server that serves without a
 * durable store is ready (its other classes serve), and `/readyz` names the store.
 */
export async function startMetricsServer(
  address: string,
  registry: Registry,
  readiness: () => Readiness,
  logger: Logger,
): Promise<MetricsServer> {
  const server = http.createServer((req, res) => {
    const url = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (url === '/metrics') {
      registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
        (err: unknown) => {
          logger.error({ err }, 'metrics collection failed');
          res.writeHead(500).end('metrics collection failed\n');
        },
      );
    } else if (url === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    } else if (url === '/readyz') {
      const { ready, degraded } = readiness();
      const lines = [ready ? 'ready' : 'not ready'];
      for (const store of degraded)
        lines.push(`degraded: durable store "${store}" unreachable, recovering its flights`);
      res.writeHead(ready ? 200 : 503, { 'content-type': 'text/plain' }).end(`${lines.join('\n')}\n`);
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /metrics, /healthz or /readyz\n');
    }
  });
  const { host, port } = splitHostPort(address);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = (server.address() as { port: number }).port;
  logger.info({ metrics: address, port: bound }, 'metrics server listening');
  return {
    port: bound,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function splitHostPort(address: string): { host: string; port: number } {
  const at = address.lastIndexOf(':');
  const host = address.slice(0, at).replace(/^\[(.*)\]$/, '$1');
  return { host, port: Number(address.slice(at + 1)) };
}
