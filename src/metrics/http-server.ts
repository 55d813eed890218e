import { timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { Registry } from 'prom-client';
import type { Logger } from '../core/log.js';
import { listenError } from '../core/listen-error.js';

export interface MetricsServer {
  readonly port: number;
  /** New certificate, key and client CA for new connections (TLS reloaded on SIGHUP). */
  setTls(pem: { cert: Buffer; key: Buffer; ca?: Buffer }): void;
  stop(): Promise<void>;
}

export interface MetricsServerOptions {
  /** Serve HTTPS with these (the Flight port's `server.tls` files). */
  tls?: { cert: Buffer; key: Buffer; ca?: Buffer };
  /**
   * As on the Flight port (`server.tls.requireClientCert`): refuse a client without a
   * certificate signed by `tls.ca`, so limits' tenant names and paths stay with the
   * clients the Flight port lets in.
   */
  requireClientCert?: boolean;
  /** `server.metricsToken`: `/metrics` answers only `authorization: Bearer <token>` (401 otherwise). */
  token?: string;
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
  options: MetricsServerOptions = {},
): Promise<MetricsServer> {
  const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const url = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (url === '/metrics') {
      if (options.token !== undefined && !bearerMatches(req.headers.authorization, options.token)) {
        res
          .writeHead(401, { 'www-authenticate': 'Bearer', 'content-type': 'text/plain' })
          .end('a bearer token is needed\n');
        return;
      }
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
  };
  const clientCerts = (pem: { ca?: Buffer }) =>
    options.requireClientCert ? { ca: pem.ca, requestCert: true, rejectUnauthorized: true } : {};
  const server = options.tls
    ? https.createServer({ cert: options.tls.cert, key: options.tls.key, ...clientCerts(options.tls) }, handler)
    : http.createServer(handler);
  const { host, port } = splitHostPort(address);
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(listenError('server.metrics', address, err)));
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = (server.address() as { port: number }).port;
  logger.info({ metrics: address, port: bound, tls: options.tls !== undefined }, 'metrics server listening');
  return {
    port: bound,
    setTls: (pem) => {
      if (server instanceof https.Server)
        server.setSecureContext({ cert: pem.cert, key: pem.key, ...clientCerts(pem) });
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Compares a request's `authorization` with the expected bearer token in constant time. */
function bearerMatches(header: string | undefined, token: string): boolean {
  const match = /^bearer\s+(.+)$/i.exec(header ?? '');
  if (!match) return false;
  const given = Buffer.from(match[1] as string);
  const want = Buffer.from(token);
  return given.length === want.length && timingSafeEqual(given, want);
}

function splitHostPort(address: string): { host: string; port: number } {
  const at = address.lastIndexOf(':');
  const host = address.slice(0, at).replace(/^\[(.*)\]$/, '$1');
  return { host, port: Number(address.slice(at + 1)) };
}
