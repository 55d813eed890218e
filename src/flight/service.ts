import type { Denial } from '../auth/denials.js';
import type { ServerDuplexStream, UntypedServiceImplementation } from '@grpc/grpc-js';
import { noAuthentication, type Authenticator } from '../auth/authenticator.js';
import type { Logger } from '../core/log.js';
import { UnimplementedError } from '../errors.js';
import type { Reservations } from '../coordination/index.js';
import type { JobRunner } from '../jobs/runner.js';
import type { StorageManager } from '../storage/manager.js';
import type { BatchSplitter } from './batch-splitter.js';
import { SOLO_NODE, type ClusterPort } from './cluster-port.js';
import { Owners } from './owners.js';
import type { RpcContext, RpcObserver } from './call.js';
import type { DecodedFlightData, OutgoingFlightData } from './flight-data-codec.js';
import { guard } from './guard.js';
import { actionHandlers } from './rpc/actions.js';
import { doGet } from './rpc/get.js';
import { handshake } from './rpc/handshake.js';
import { infoHandlers } from './rpc/info.js';
import { doPutHandler } from './rpc/put.js';
import { toServiceError } from './status.js';

export type { RpcObserver } from './call.js';
export { FLIGHT_SIZE_HEADER } from './rpc/put.js';

export interface FlightServiceOptions {
  manager: StorageManager;
  reservations: Reservations;
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
}

/**
 * The Flight RPC surface (DESIGN.md §1), one file per family in `rpc/`. Deliberately thin:
 * each handler validates the request's shape, calls the storage manager and maps errors
 * to statuses; `guard` runs first (ready, then authenticated).
 */
export function createFlightService(options: FlightServiceOptions): UntypedServiceImplementation {
  const ctx: RpcContext = {
    manager: options.manager,
    reservations: options.reservations,
    jobs: options.jobs,
    log: options.logger,
    observe: options.observeRpc ?? (() => undefined),
    advertise: options.advertise,
    maxEndpointBytes: options.maxEndpointBytes,
    splitter: options.splitter,
    validateIpc: options.validateIpc !== false,
    ...(options.denied ? { denied: options.denied } : {}),
    owners: new Owners(options.cluster ?? SOLO_NODE, options.manager, options.logger),
  };
  const authenticator = options.authenticator ?? noAuthentication;
  return guard(
    {
      Handshake: handshake(authenticator, ctx.log),
      ...infoHandlers(ctx),
      DoGet: doGet(ctx),
      DoPut: doPutHandler(ctx),
      DoExchange: (call: ServerDuplexStream<DecodedFlightData, OutgoingFlightData>) => {
        call.on('error', () => undefined);
        const refused = new UnimplementedError('DoExchange is not supported by Tierflight: use DoPut and DoGet');
        call.emit('error', toServiceError(refused, ctx.log, 'DoExchange'));
      },
      ...actionHandlers(ctx),
    },
    options.ready ?? (() => true),
    authenticator,
    ctx.log,
    options.denied,
  );
}
