import { type sendUnaryData, type ServerUnaryCall, type ServerWritableStream } from '@grpc/grpc-js';
import type { Logger } from '../core/log.js';
import type { Owners } from './owners.js';
import type { DatasetHomes } from './dataset-homes.js';
import type { Denial } from '../auth/denials.js';
import type { Authenticator } from '../auth/authenticator.js';
import type { Reservations } from '../coordination/index.js';
import type { Datasets } from '../datasets/datasets.js';
import type { JobRunner } from '../jobs/runner.js';
import type { StorageManager } from '../storage/manager.js';
import type { BatchSplitter } from './batch-splitter.js';
import type { ClusterPort } from './cluster-port.js';
import { toServiceError } from './status.js';

/** Called once per finished call with its gRPC status name (OK, NOT_FOUND, CANCELLED, ...). */
export type RpcObserver = (method: string, code: string, seconds: number) => void;

/** What the Flight service is built with (the one declaration the server's options are picked from). */
export interface FlightServiceOptions {
  manager: StorageManager;
  reservations: Reservations;
  /** Partitioned datasets (DESIGN §9). */
  datasets: Datasets;
  jobs: JobRunner;
  logger: Logger;
  /** Location put in endpoints; undefined means "this same server" (empty location list). */
  advertise?: string;
  /** Largest batch range one endpoint covers. */
  maxEndpointBytes: number;
  /** With `server.maxBatchBytes`: DoGet splits larger stored batches (Go and Rust clients refuse >4 MiB). */
  splitter?: BatchSplitter;
  /** Records each call's duration and final status (RPC latency metrics). */
  observeRpc?: RpcObserver;
  /**
   * False skips IPC validation on DoPut, reading only the header fields storage needs:
   * for measuring the validator's cost (bench/validator.ts), never for serving.
   */
  validateIpc?: boolean;
  /** False while the server starts (tiers wiped, flights recovered): calls get UNAVAILABLE. */
  ready?: () => boolean;
  /** Who each call is (DESIGN §7); without one, every call is anonymous. */
  authenticator?: Authenticator;
  /** Counts calls refused for lack of permission. */
  denied?: (d: Denial) => void;
  /** The other nodes (DESIGN §8); none: a node outside any cluster (SOLO_NODE). */
  cluster?: ClusterPort;
  /** Where each dataset's generations are kept in a cluster (built from `cluster` when not given). */
  homes?: DatasetHomes;
}

/** What every RPC family's handlers share: the service's options (FlightServiceOptions), settled. */
export type RpcContext = Pick<
  FlightServiceOptions,
  'manager' | 'reservations' | 'datasets' | 'jobs' | 'advertise' | 'maxEndpointBytes' | 'splitter' | 'denied'
> & {
  log: Logger;
  observe: RpcObserver;
  /** False skips IPC validation on DoPut (bench/validator.ts only). */
  validateIpc: boolean;
  /** Routes calls to their paths' owners (DESIGN §8); outside a cluster, every call is answered here. */
  owners: Owners;
  /** Partitioned datasets across the cluster: each dataset's home, its partitions' owners. */
  homes: DatasetHomes;
};

export const EMPTY: Buffer = Buffer.alloc(0);

/** A time in ms as a protobuf Timestamp (null for none). */
export function toTimestamp(ms: number | undefined): { seconds: number; nanos: number } | null {
  if (ms === undefined) return null;
  return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1_000_000 };
}

import { statusName } from './status.js';

export { statusName };

/** A unary handler: answers with `fn`'s result (or what it resolves to) or the status its error maps to, observed. */
export function unary<Req, Res>(
  ctx: RpcContext,
  method: string,
  fn: (request: Req, call: ServerUnaryCall<Req, Res>) => Res | Promise<Res>,
): (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => void {
  return (call, callback) => {
    const started = performance.now();
    const fail = (err: unknown): void => {
      const e = toServiceError(err, ctx.log, method);
      if (!call.cancelled) callback(e);
      ctx.observe(method, call.cancelled ? 'CANCELLED' : statusName(e.code), (performance.now() - started) / 1000);
    };
    const answer = (res: Res): void => {
      if (!call.cancelled) callback(null, res);
      ctx.observe(method, call.cancelled ? 'CANCELLED' : 'OK', (performance.now() - started) / 1000);
    };
    try {
      const res = fn(call.request, call);
      if (res instanceof Promise) res.then(answer, fail);
      else answer(res);
    } catch (err) {
      fail(err);
    }
  };
}

/** Aborts when the client cancels the call (or its connection goes): waits end and free their slot. */
export function cancelSignal(call: NodeJS.EventEmitter & { cancelled: boolean }): AbortSignal {
  const controller = new AbortController();
  if (call.cancelled) controller.abort();
  else call.once('cancelled', () => controller.abort());
  return controller.signal;
}

/** Runs a server-streaming body with backpressure, ending the call or failing it with a status. */
export async function streamOut<Req, Res>(
  ctx: Pick<RpcContext, 'log' | 'observe'>,
  call: ServerWritableStream<Req, Res>,
  method: string,
  body: (write: (msg: Res, onSent?: (err?: Error | null) => void) => Promise<void>) => Promise<void>,
): Promise<void> {
  const started = performance.now();
  // A call reset while the body was still getting ready (opening a flight) is already
  // destroyed: writing to it returns false and no 'drain' follows, so never wait on it.
  const write = (msg: Res, onSent?: (err?: Error | null) => void): Promise<void> =>
    gone(call) || call.write(msg, onSent) ? Promise.resolve() : drained(call);
  let code = 'OK';
  try {
    await body(write);
    if (!call.cancelled) call.end();
  } catch (err) {
    const e = toServiceError(err, ctx.log, method);
    code = statusName(e.code);
    if (!call.cancelled) call.emit('error', e);
  }
  ctx.observe(method, call.cancelled ? 'CANCELLED' : code, (performance.now() - started) / 1000);
}

/** True once the client is gone: cancelled, or its stream destroyed. */
export function gone(call: { cancelled: boolean; destroyed: boolean }): boolean {
  return call.cancelled || call.destroyed;
}

/** Resolves when a writable call can take more, or when it is gone. */
function drained(call: NodeJS.EventEmitter & { cancelled: boolean; destroyed: boolean }): Promise<void> {
  return new Promise((resolve) => {
    if (gone(call)) {
      resolve();
      return;
    }
    const done = (): void => {
      call.off('drain', done);
      call.off('close', done);
      call.off('cancelled', done);
      resolve();
    };
    call.on('drain', done);
    call.on('close', done);
    call.on('cancelled', done);
  });
}
