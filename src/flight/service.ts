import type { ServerDuplexStream, UntypedServiceImplementation } from '@grpc/grpc-js';
import { noAuthentication } from '../auth/authenticator.js';
import { UnimplementedError } from '../errors.js';
import { SOLO_NODE } from './cluster-port.js';
import { Owners } from './owners.js';
import { DatasetHomes } from './dataset-homes.js';
import type { FlightServiceOptions, RpcContext } from './call.js';
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

export type { FlightServiceOptions } from './call.js';

/**
 * The Flight RPC surface (DESIGN.md §1), one file per family in `rpc/`. Deliberately thin:
 * each handler validates the request's shape, calls the storage manager and maps errors
 * to statuses; `guard` runs first (ready, then authenticated).
 */
export function createFlightService(options: FlightServiceOptions): UntypedServiceImplementation {
  const ctx: RpcContext = {
    manager: options.manager,
    reservations: options.reservations,
    datasets: options.datasets,
    jobs: options.jobs,
    log: options.logger,
    observe: options.observeRpc ?? (() => undefined),
    advertise: options.advertise,
    maxEndpointBytes: options.maxEndpointBytes,
    splitter: options.splitter,
    validateIpc: options.validateIpc !== false,
    ...(options.denied ? { denied: options.denied } : {}),
    owners: new Owners(options.cluster ?? SOLO_NODE, options.manager, options.logger),
    homes: options.homes ?? new DatasetHomes(options.cluster ?? SOLO_NODE, options.datasets, options.manager),
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
