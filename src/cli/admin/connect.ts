import { readFileSync } from 'node:fs';
import { FlightCallError, FlightClient, FlightStatus as status, statusName } from '../../client/flight-client.js';
import { retryDelay } from '../../errors.js';
import { readPassword } from '../password.js';

/** The connection options every `tierflight admin` command takes (DESIGN §6). */
export interface ConnectOptions {
  server: string;
  tlsCa?: string;
  cert?: string;
  key?: string;
  user?: string;
  json?: boolean;
  /** Sizes in exact bytes on a terminal too. */
  bytes?: boolean;
}

export const DEFAULT_SERVER = 'grpc+tcp://localhost:8815';

/**
 * A client for `--server`: TLS with `--tls-ca` (or the system roots for grpc+tls://),
 * mutual TLS with `--cert`/`--key`, and with `--user` a Handshake (password from
 * $TIERFLIGHT_PASSWORD or a prompt) whose bearer token every later call carries.
 */
export async function connect(options: ConnectOptions): Promise<FlightClient> {
  if (!/^grpc(\+tcp|\+tls)?:\/\/[^/\s]+:\d{1,5}$/.test(options.server)) {
    throw new UsageError(
      `--server "${options.server}" is not a Flight location: grpc+tcp://host:port, or grpc+tls://host:port for TLS`,
    );
  }
  const tls = options.server.startsWith('grpc+tls://') || options.tlsCa !== undefined;
  if ((options.cert === undefined) !== (options.key === undefined)) {
    throw new UsageError('--cert and --key go together (a client certificate and its key)');
  }
  const server = tls ? options.server.replace(/^grpc(\+tcp)?:\/\//, 'grpc+tls://') : options.server;
  const pem = (file: string | undefined): Buffer | undefined => (file === undefined ? undefined : readFileSync(file));
  const tlsFiles = tls ? { tls: { ca: pem(options.tlsCa), cert: pem(options.cert), key: pem(options.key) } } : {};
  const base = new FlightClient(server, tlsFiles);
  if (options.user === undefined) return base;
  try {
    const password = await readPassword();
    const basic = Buffer.from(`${options.user}:${password}`).toString('base64');
    const answer = await base.handshake({ authorization: `Basic ${basic}` });
    const token = answer.authorization;
    if (!token) throw new FlightCallError(status.UNAUTHENTICATED, 'the server sent no bearer token', 'Handshake');
    return new FlightClient(server, { ...tlsFiles, headers: { authorization: token } });
  } finally {
    base.close();
  }
}

/** A command used wrongly: exit code 2, like a bad option. */
export class UsageError extends Error {}

/** What the command was to act on is not there (e.g. `rm` of no flight): exit code 3, as NOT_FOUND. */
export class NothingThere extends Error {}

/** Exit codes a script can use. */
export const EXIT = { ok: 0, failed: 1, usage: 2, notFound: 3, denied: 4, unavailable: 5 } as const;

export function exitCodeOf(err: unknown): number {
  if (err instanceof UsageError) return EXIT.usage;
  if (err instanceof NothingThere) return EXIT.notFound;
  if (!(err instanceof FlightCallError)) return EXIT.failed;
  if (err.code === status.NOT_FOUND) return EXIT.notFound;
  if (err.code === status.UNAUTHENTICATED || err.code === status.PERMISSION_DENIED) return EXIT.denied;
  if (err.code === status.UNAVAILABLE || err.code === status.DEADLINE_EXCEEDED) return EXIT.unavailable;
  return EXIT.failed;
}

/** Tries of a rerunnable command the server answers "retry here", and the longest wait it follows. */
export const RETRY_ATTEMPTS = 3;
export const RETRY_WAIT_MS = 10_000;

/**
 * How long to wait before trying a call again, when the server said to retry it here
 * (`x-tierflight-retry: here[;after=ms]`, no wait given: 0) and the wait is at most
 * RETRY_WAIT_MS; undefined when it should not be retried.
 */
export function retryWait(err: unknown): number | undefined {
  return err instanceof FlightCallError ? retryDelay(err.retry, RETRY_WAIT_MS) : undefined;
}

/** One line: what failed, on which path, with which status (and, for a failed connection, what to try). */
export function describeError(command: string, target: string | undefined, err: unknown, server?: string): string {
  const where = target === undefined ? command : `${command} ${target}`;
  if (err instanceof FlightCallError) {
    return `tierflight admin ${where}: ${statusName(err.code)}: ${oneLine(err.details)}${tlsHint(err, server)}`;
  }
  return `tierflight admin ${where}: ${oneLine((err as Error).message)}`;
}

/** A TLS server reached without trusting its certificate, or without TLS at all: say what to pass. */
function tlsHint(err: FlightCallError, server: string | undefined): string {
  if (err.code !== status.UNAVAILABLE) return '';
  if (/unable to verify|self[- ]signed|certificate/i.test(err.details)) {
    return " (the server's certificate is not trusted: pass --tls-ca with the CA that signed it)";
  }
  const plaintext = server !== undefined && !server.startsWith('grpc+tls://');
  if (plaintext && /Failed to connect/.test(err.details) && !/ECONNREFUSED/.test(err.details)) {
    return ' (if the server serves TLS, use --server grpc+tls://… and --tls-ca)';
  }
  return '';
}

/** The first line, without grpc-js's empty trailing notes. */
function oneLine(text: string): string {
  return (text.split('\n')[0] ?? '').replace(/\s*Resolution note:\s*$/, '').trim();
}
