import { JobRunner } from '../jobs/runner.js';
import { systemClock } from '../core/clock.js';
import { Server, ServerCredentials, setLogger, type ChannelOptions } from '@grpc/grpc-js';
import type { ServerConfig } from '../config/schema.js';
import type { StorageManager } from '../storage/manager.js';
import type { Logger } from '../core/log.js';
import { listenError } from '../core/listen-error.js';
import { loadFlightService } from './proto.js';
import { BatchSplitter } from './batch-splitter.js';
import {
  allowHonestCancels,
  installNoMessageAfterStatus,
  installPiecewiseReceive,
  installPrefixedSend,
  widenFlowControlWindows,
  type GrpcInternals,
} from './grpc-internals.js';
import { createFlightService, type FlightServiceOptions } from './service.js';

export interface FlightServer {
  /** The port actually bound (useful with port 0). */
  readonly port: number;
  /** Which grpc-js internals took effect (see grpc-internals.ts). */
  readonly internals: GrpcInternals;
  /** Stops accepting calls, waits up to `graceMs` for running ones, then cancels them. */
  stop(graceMs: number): Promise<void>;
}

/**
 * What the Flight server is started with besides its config section: the service's
 * options (one declaration, `FlightServiceOptions`) that are not read from `server`, and the
 * credentials. `advertise` overrides `server.advertise` (a cluster member's own location).
 */
export type FlightServerOptions = Pick<
  FlightServiceOptions,
  | 'reservations'
  | 'datasets'
  | 'observeRpc'
  | 'ready'
  | 'validateIpc'
  | 'authenticator'
  | 'denied'
  | 'cluster'
  | 'homes'
  | 'advertise'
> &
  Partial<Pick<FlightServiceOptions, 'jobs'>> & {
    /** TLS and mutual TLS go here (DESIGN §7); insecure by default. */
    credentials?: ServerCredentials;
  };

export async function startFlightServer(
  server: ServerConfig,
  manager: StorageManager,
  logger: Logger,
  options: FlightServerOptions,
): Promise<FlightServer> {
  const { credentials, ...service } = options;
  // grpc-js writes its own errors to the console; they go through the one logger instead
  // (what Tierflight reports itself, such as a port in use, says it better).
  setLogger({ error: (...args: unknown[]) => logger.warn({ grpc: args.map(String).join(' ') }, 'grpc-js') });
  const channelOptions: ChannelOptions = {
    'grpc.max_receive_message_length': server.maxMessageSize,
    'grpc.max_send_message_length': server.maxMessageSize,
    'grpc.max_concurrent_streams': server.maxConcurrentStreams,
  };
  const internals: GrpcInternals = {
    zeroCopySend: installPrefixedSend(),
    noMessageAfterStatus: installNoMessageAfterStatus(),
    piecewiseReceive: installPiecewiseReceive(),
    honestCancels: false,
    wideWindows: false,
  };
  const grpcServer = new Server(channelOptions);
  grpcServer.addService(
    loadFlightService(),
    createFlightService({
      ...service,
      manager,
      jobs: options.jobs ?? new JobRunner(systemClock, logger),
      logger,
      maxEndpointBytes: server.maxEndpointBytes,
      ...(server.maxBatchBytes !== undefined
        ? { splitter: await BatchSplitter.create(server.maxBatchBytes, logger) }
        : {}),
      ...((options.advertise ?? server.advertise) ? { advertise: options.advertise ?? server.advertise } : {}),
    }),
  );
  internals.honestCancels = allowHonestCancels(grpcServer);
  const port = await new Promise<number>((resolve, reject) => {
    grpcServer.bindAsync(server.listen, credentials ?? ServerCredentials.createInsecure(), (err, bound) =>
      err ? reject(listenError('server.listen', server.listen, err)) : resolve(bound),
    );
  });
  internals.wideWindows = widenFlowControlWindows(grpcServer);
  const off = Object.entries(internals).filter(([, on]) => !on);
  if (off.length > 0) {
    // See grpc-internals.ts for what each one costs when it is off.
    logger.warn({ off: off.map(([name]) => name) }, 'this grpc-js release changed internals Tierflight relies on');
  }
  logger.info(
    { listen: server.listen, port, advertise: server.advertise, tls: options.credentials?._isSecure() ?? false },
    'Flight server listening',
  );
  return {
    port,
    internals,
    stop: (graceMs) =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          logger.warn({ graceMs }, 'shutdown grace expired; cancelling running calls');
          grpcServer.forceShutdown();
          resolve();
        }, graceMs);
        timer.unref();
        grpcServer.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      }),
  };
}
