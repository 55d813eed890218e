import {
  Client,
  credentials as grpcCredentials,
  Metadata,
  type ChannelCredentials,
  type ClientDuplexStream,
  type ClientReadableStream,
  type ServiceError,
} from '@grpc/grpc-js';
import { parseRetry, RETRY_TRAILER, type RetryHint } from '../errors.js';
import { FLOW_CONTROL_WINDOW } from '../flight/grpc-internals.js';
import { loadFlightService, SERVICE_NAME } from '../flight/proto.js';

export interface FlightClientOptions {
  /** Headers sent with every call (e.g. `authorization: Bearer …`). */
  headers?: Record<string, string>;
  /** Channel credentials; by default insecure for `grpc://`/`grpc+tcp://`, TLS with system roots for `grpc+tls://`. */
  credentials?: ChannelCredentials;
  /** TLS from PEM bytes (for grpc+tls://): the CA to trust, and a client certificate and key for mutual TLS. */
  tls?: { ca?: Buffer | undefined; cert?: Buffer | undefined; key?: Buffer | undefined };
  /** Largest message sent or received (default 1 GiB: Tierflight's batches can be large). */
  maxMessageBytes?: number;
  /** HTTP/2 keepalive pings this often (ms) while calls are open, so a peer that stops answering fails them. */
  keepaliveMs?: number;
  /** Longest wait between attempts to reconnect to a server that went away (grpc-js default: 2 minutes). */
  maxReconnectBackoffMs?: number;
}

/** A failed call: its gRPC status code, the server's message and its retry hint (the `x-tierflight-retry` trailer). */
export class FlightCallError extends Error {
  constructor(
    readonly code: number,
    readonly details: string,
    readonly method: string,
    readonly retry?: RetryHint,
  ) {
    super(`${method}: ${details} (status ${code})`);
  }
}

type Method = {
  path: string;
  requestSerialize: (value: never) => Buffer;
  responseDeserialize: (bytes: Buffer) => unknown;
};

/**
 * A channel to one Flight server and the gRPC plumbing of its calls (unary, server
 * streaming, bidirectional), each failure a FlightCallError carrying the status code.
 */
export class FlightChannel {
  private readonly client: Client;
  private readonly methods: Record<string, Method>;
  private readonly headers: Record<string, string>;

  constructor(location: string, options: FlightClientOptions = {}) {
    const match = /^grpc(\+tcp|\+tls)?:\/\/(.+)$/.exec(location);
    if (!match) throw new Error(`"${location}" is not a Flight location (grpc://host:port or grpc+tls://host:port)`);
    const tls = match[1] === '+tls';
    const creds =
      options.credentials ??
      (tls
        ? grpcCredentials.createSsl(options.tls?.ca ?? null, options.tls?.key ?? null, options.tls?.cert ?? null)
        : grpcCredentials.createInsecure());
    const max = options.maxMessageBytes ?? 1 << 30;
    this.client = new Client(match[2] as string, creds, {
      'grpc.max_receive_message_length': max,
      'grpc.max_send_message_length': max,
      // grpc-js's 64 KiB receive windows slow large reads several times over (see flight/grpc-internals.ts).
      'grpc-node.flow_control_window': FLOW_CONTROL_WINDOW,
      ...(options.maxReconnectBackoffMs !== undefined
        ? {
            'grpc.initial_reconnect_backoff_ms': Math.min(200, options.maxReconnectBackoffMs),
            'grpc.max_reconnect_backoff_ms': options.maxReconnectBackoffMs,
          }
        : {}),
      ...(options.keepaliveMs !== undefined
        ? {
            'grpc.keepalive_time_ms': options.keepaliveMs,
            'grpc.keepalive_timeout_ms': options.keepaliveMs,
          }
        : {}),
    });
    this.methods = loadFlightService() as unknown as Record<string, Method>;
    this.headers = { ...options.headers };
  }

  /** A bidirectional call (Handshake, DoPut); `serialize` defaults to the method's own. */
  bidi<Req, Res>(
    name: string,
    headers: Record<string, string>,
    serialize?: (value: Req) => Buffer,
  ): ClientDuplexStream<Req, Res> {
    const m = this.method(name);
    return this.client.makeBidiStreamRequest(
      this.path(name),
      serialize ?? (m.requestSerialize as (value: Req) => Buffer),
      m.responseDeserialize as (b: Buffer) => Res,
      this.metadata(headers),
    );
  }

  /** The method's request encoder (FlightData, descriptors). */
  serializer<Req>(name: string): (value: Req) => Buffer {
    return this.method(name).requestSerialize as (value: Req) => Buffer;
  }

  close(): void {
    this.client.close();
  }

  unary<T>(name: string, request: unknown, headers: Record<string, string> = {}, deadline?: number): Promise<T> {
    const m = this.method(name);
    return new Promise((resolve, reject) => {
      this.client.makeUnaryRequest(
        this.path(name),
        m.requestSerialize,
        m.responseDeserialize,
        request as never,
        this.metadata(headers),
        deadline === undefined ? {} : { deadline },
        (err: ServiceError | null, res?: unknown) => (err ? reject(this.failure(name, err)) : resolve(res as T)),
      );
    });
  }

  async *stream<T>(
    name: string,
    request: unknown,
    headers: Record<string, string> = {},
    deadline?: number,
  ): AsyncGenerator<T> {
    const m = this.method(name);
    const call: ClientReadableStream<T> = this.client.makeServerStreamRequest(
      this.path(name),
      m.requestSerialize,
      m.responseDeserialize as (b: Buffer) => T,
      request as never,
      this.metadata(headers),
      deadline === undefined ? {} : { deadline },
    );
    try {
      for await (const item of call) yield item as T;
    } catch (err) {
      throw this.failure(name, err as ServiceError);
    } finally {
      call.cancel();
    }
  }

  async collect<T>(
    name: string,
    request: unknown,
    headers: Record<string, string> = {},
    deadline?: number,
  ): Promise<T[]> {
    const out: T[] = [];
    for await (const item of this.stream<T>(name, request, headers, deadline)) out.push(item);
    return out;
  }

  private method(name: string): Method {
    const m = this.methods[name];
    if (!m) throw new Error(`the Flight service has no method ${name}`);
    return m;
  }

  private path(name: string): string {
    return `/${SERVICE_NAME}/${name}`;
  }

  private metadata(extra: Record<string, string> = {}): Metadata {
    const md = new Metadata();
    for (const [k, v] of Object.entries({ ...this.headers, ...extra })) md.set(k, v);
    return md;
  }

  failure(method: string, err: ServiceError): FlightCallError {
    const hint = err.metadata?.get(RETRY_TRAILER)[0];
    return new FlightCallError(
      err.code ?? 2,
      err.details ?? err.message,
      method,
      parseRetry(typeof hint === 'string' ? hint : hint?.toString()),
    );
  }
}
