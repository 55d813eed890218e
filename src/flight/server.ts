import type { Http2Server, Http2Session } from 'node:http2';
import { Server, ServerCredentials, type ChannelOptions } from '@grpc/grpc-js';
import type { ServerConfig } from '../config/schema.js';
import type { StorageManager } from '../storage/manager.js';
import type { Logger } from '../util/log.js';
import { loadFlightService } from './proto.js';
import { BatchSplitter } from './batch-splitter.js';
import { installNoMessageAfterStatus, installPrefixedSend } from './grpc-js-patches.js';
import { createFlightService, type RpcObserver } from './service.js';

/**
 * HTTP/2 flow-control window for each stream and for the connection. grpc-js leaves the
 * server at 64 KiB; measured here, a DoPut stream moved 0.35 GB/s with that and 0.92 GB/s
 * with 16 MiB windows.
 */
export const FLOW_CONTROL_WINDOW = 16 * 1024 * 1024;

/**
 * Largest HTTP/2 DATA frame we let clients send (the protocol default is 16 KiB): fewer,
 * larger frames mean less per-frame work when a DoPut streams multi-MiB batches.
 */
export const MAX_FRAME_SIZE = 1024 * 1024;

export interface FlightServer {
  /** The port actually bound (useful with port 0). */
  readonly port: number;
  /** Stops accepting calls, waits up to `graceMs` for running ones, then cancels them. */
  stop(graceMs: number): Promise<void>;
}

export interface FlightServerOptions {
  observeRpc?: RpcObserver;
  /** False until the server may answer calls; until then every call gets UNAVAILABLE. */
  ready?: () => boolean;
  /** See FlightServiceOptions.validateIpc. */
  validateIpc?: boolean;
}

export async function startFlightServer(
  server: ServerConfig,
  manager: StorageManager,
  logger: Logger,
  options: FlightServerOptions = {},
): Promise<FlightServer> {
  const { observeRpc } = options;
  const channelOptions: ChannelOptions = {
    'grpc.max_receive_message_length': server.maxMessageSize,
    'grpc.max_send_message_length': server.maxMessageSize,
    'grpc.max_concurrent_streams': server.maxConcurrentStreams,
  };
  if (!installPrefixedSend()) {
    logger.warn('this grpc-js cannot send stored messages as they are; DoGet copies each batch (slower)');
  }
  if (!installNoMessageAfterStatus()) {
    logger.warn('this grpc-js cannot be kept from writing after a status; a DoPut over maxMessageSize may end late');
  }
  const grpcServer = new Server(channelOptions);
  grpcServer.addService(
    loadFlightService(),
    createFlightService({
      manager,
      logger,
      maxEndpointBytes: server.maxEndpointBytes,
      ...(server.maxBatchBytes !== undefined
        ? { splitter: await BatchSplitter.create(server.maxBatchBytes, logger) }
        : {}),
      ...(observeRpc ? { observeRpc } : {}),
      ...(options.ready ? { ready: options.ready } : {}),
      ...(options.validateIpc === undefined ? {} : { validateIpc: options.validateIpc }),
      ...(server.advertise ? { advertise: server.advertise } : {}),
    }),
  );
  allowHonestCancels(grpcServer, logger);
  const port = await new Promise<number>((resolve, reject) => {
    grpcServer.bindAsync(server.listen, ServerCredentials.createInsecure(), (err, bound) =>
      err ? reject(err) : resolve(bound),
    );
  });
  widenFlowControlWindows(grpcServer, logger);
  logger.info({ listen: server.listen, port, advertise: server.advertise }, 'Flight server listening');
  return {
    port,
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

/**
 * HTTP/2 "rapid reset" protection (CVE-2023-44487): nghttp2 ends a session with GOAWAY
 * once its client has reset more than `streamResetBurst` streams and then more than
 * `streamResetRate` a second. Node's defaults (1,000, then 33/s) cut off an honest client
 * that cancels many reads, such as one that reads the first batch of many flights:
 * 3,000 cancelled DoGets on one connection got 2 GOAWAYs, and the calls in flight on it
 * failed. A burst of 10,000 and 1,000 a second lets such a client keep its connection
 * while a flood is still cut off within a second or so; each reset costs the server one
 * stream setup, and grpc.max_concurrent_streams bounds the streams open at once. grpc-js
 * has no option for these, so they go into the options it creates its http2 server with
 * (Node 24 honours them; Node 20 ignored them and always cut at about 1,000).
 */
const STREAM_RESET_BURST = 10_000;
const STREAM_RESET_RATE = 1_000;

function allowHonestCancels(grpcServer: Server, logger: Logger): void {
  const options = (grpcServer as unknown as { commonServerOptions?: Record<string, unknown> }).commonServerOptions;
  if (typeof options !== 'object' || options === null) {
    logger.warn(
      "cannot reach grpc-js's http2 server options; a client cancelling over 1,000 calls may be disconnected",
    );
    return;
  }
  options.streamResetBurst = STREAM_RESET_BURST;
  options.streamResetRate = STREAM_RESET_RATE;
}

/**
 * grpc-js offers no server option for HTTP/2 windows, so we reach the http2 servers it
 * created and raise them: the SETTINGS initial window for streams (what a client may
 * send on one DoPut before we read) and each session's connection window.
 */
function widenFlowControlWindows(grpcServer: Server, logger: Logger): void {
  const servers = (grpcServer as unknown as { http2Servers?: Map<Http2Server, unknown> }).http2Servers;
  if (!(servers instanceof Map)) {
    logger.warn('cannot reach grpc-js http2 servers; HTTP/2 windows stay at 64 KiB (DoPut will be slower)');
    return;
  }
  for (const http2Server of servers.keys()) {
    http2Server.updateSettings({ initialWindowSize: FLOW_CONTROL_WINDOW, maxFrameSize: MAX_FRAME_SIZE });
    http2Server.on('session', (session: Http2Session) => {
      session.setLocalWindowSize(FLOW_CONTROL_WINDOW);
    });
  }
}
