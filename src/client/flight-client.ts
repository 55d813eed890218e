import {
  Client,
  credentials as grpcCredentials,
  Metadata,
  type ChannelCredentials,
  type ClientReadableStream,
  type ServiceError,
} from '@grpc/grpc-js';
import { InvalidMessageError } from '../ipc/message-header.js';
import { encapsulatedMessages, toIpcStream, unwrapMessage } from '../ipc/ipc-stream.js';
import { isDecodeError, type DecodedFlightData } from '../flight/flight-data-codec.js';
import { loadFlightService, SERVICE_NAME } from '../flight/proto.js';
import { FLOW_CONTROL_WINDOW } from '../flight/grpc-internals.js';
import type { PbDescriptor, PbFlightInfo, PbPollInfo } from '../flight/proto.js';

/** One Arrow IPC message as Flight carries it. */
export interface FlightMessage {
  header: Buffer;
  body: Buffer;
  appMetadata?: Buffer;
  /**
   * The whole FlightData message already encoded (header, body and app_metadata only, as a
   * server received it): sent as is, not encoded again. Ignored for a put's first message,
   * which gets the descriptor.
   */
  wire?: Buffer;
}

/** What GetFlightInfo and ListFlights answer, with the schema message unwrapped. */
export interface FlightInfo {
  path: string[];
  /** The schema's IPC message flatbuffer (no continuation prefix). */
  schemaHeader: Buffer;
  endpoints: { ticket: Buffer; locations: string[]; expiresAt?: Date }[];
  totalRecords: number;
  totalBytes: number;
  /** The FlightInfo's app_metadata (Tierflight: JSON with createdAt, updatedAt, owner). */
  appMetadata: Buffer;
}

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

export { GrpcStatus as FlightStatus, statusName } from '../flight/status.js';

/** A failed call: its gRPC status code and the server's message. */
export class FlightCallError extends Error {
  constructor(
    readonly code: number,
    readonly details: string,
    readonly method: string,
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
 * A typed Arrow Flight client over grpc-js, sharing the server's FlightData codec (batch
 * bodies are never copied into protobuf objects): for the admin CLI and tests. Every call
 * that fails rejects with a FlightCallError carrying the gRPC status code.
 */
export class FlightClient {
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

  /** Handshake: sends `headers` (credentials) and returns the response headers (a token, for one). */
  handshake(headers: Record<string, string> = {}): Promise<Record<string, string>> {
    const call = this.client.makeBidiStreamRequest(
      this.path('Handshake'),
      this.method('Handshake').requestSerialize,
      this.method('Handshake').responseDeserialize,
      this.metadata(headers),
    );
    return new Promise((resolve, reject) => {
      const answer: Record<string, string> = {};
      call.on('metadata', (md: Metadata) => {
        for (const [key, value] of Object.entries(md.getMap())) answer[key] = value.toString();
      });
      call.on('data', () => undefined);
      call.on('error', (err: ServiceError) => reject(this.failure('Handshake', err)));
      call.on('status', (s: { code: number }) => s.code === 0 && resolve(answer));
      call.write({ protocol_version: 0, payload: Buffer.alloc(0) } as never);
      call.end();
    });
  }

  async listFlights(prefix = ''): Promise<FlightInfo[]> {
    const infos = await this.collect<PbFlightInfo>('ListFlights', { expression: Buffer.from(prefix) });
    return infos.map(toFlightInfo);
  }

  /** GetFlightInfo; `headers` for this call only (e.g. `x-tierflight-wait-ms`). */
  async getFlightInfo(path: string | readonly string[], headers: Record<string, string> = {}): Promise<FlightInfo> {
    return toFlightInfo(await this.unary<PbFlightInfo>('GetFlightInfo', descriptor(path), headers));
  }

  /** The flight's schema as an IPC message flatbuffer. */
  async getSchema(path: string | readonly string[]): Promise<Buffer> {
    const { schema } = await this.unary<{ schema: Buffer }>('GetSchema', descriptor(path));
    return unwrapSchema(schema);
  }

  /** DoAction, results as they stream in (long verbs report progress this way); `headers` for this call only. */
  async *doAction(
    type: string,
    body: Buffer | object = Buffer.alloc(0),
    headers: Record<string, string> = {},
    timeoutMs?: number,
  ): AsyncGenerator<Buffer> {
    const payload = Buffer.isBuffer(body) ? body : Buffer.from(JSON.stringify(body));
    const request = { type, body: payload };
    for await (const result of this.stream<{ body: Buffer }>('DoAction', request, headers, deadlineIn(timeoutMs)))
      yield result.body;
  }

  /**
   * The protobuf FlightInfo as the server sent it (schema still encapsulated): what one node
   * hands on to its client for another (DESIGN §8).
   */
  flightInfoMessage(
    path: readonly string[],
    headers: Record<string, string> = {},
    timeoutMs?: number,
  ): Promise<PbFlightInfo> {
    return this.unary<PbFlightInfo>('GetFlightInfo', descriptor(path), headers, deadlineIn(timeoutMs));
  }

  /** PollFlightInfo as protobuf PollInfo, for a node handing on its owner's answer. */
  pollInfoMessage(
    path: readonly string[],
    headers: Record<string, string> = {},
    timeoutMs?: number,
  ): Promise<PbPollInfo> {
    return this.unary<PbPollInfo>('PollFlightInfo', descriptor(path), headers, deadlineIn(timeoutMs));
  }

  /** ListFlights as protobuf FlightInfos, for a node merging its members' lists. */
  listFlightMessages(
    prefix: string,
    headers: Record<string, string> = {},
    timeoutMs?: number,
  ): Promise<PbFlightInfo[]> {
    return this.collect<PbFlightInfo>(
      'ListFlights',
      { expression: Buffer.from(prefix) },
      headers,
      deadlineIn(timeoutMs),
    );
  }

  /** Whether the server answers (ListActions) within `timeoutMs`; rejects with the status otherwise. */
  async ping(timeoutMs: number, headers: Record<string, string> = {}): Promise<void> {
    await this.collect('ListActions', {}, headers, Date.now() + timeoutMs);
  }

  /** DoAction whose results are JSON documents (every built-in verb). */
  async action<T = unknown>(type: string, body: Buffer | object = Buffer.alloc(0)): Promise<T[]> {
    const out: T[] = [];
    for await (const result of this.doAction(type, body)) out.push(JSON.parse(result.toString('utf8')) as T);
    return out;
  }

  listActions(): Promise<{ type: string; description: string }[]> {
    return this.collect('ListActions', {});
  }

  /** DoGet: the stream's messages, schema first, as slices of what grpc-js received. */
  async *doGet(ticket: Buffer): AsyncGenerator<FlightMessage> {
    for await (const m of this.stream<DecodedFlightData>('DoGet', { ticket })) {
      if (isDecodeError(m))
        throw new FlightCallError(13, `a DoGet message is not FlightData: ${m.decodeError}`, 'DoGet');
      yield { header: m.header, body: m.body, appMetadata: m.appMetadata };
    }
  }

  /**
   * DoPut of a schema message and the batches after it to `path`; resolves with the
   * PutResults' app_metadata once the server has committed the flight.
   */
  doPut(
    path: string | readonly string[],
    messages: Iterable<FlightMessage> | AsyncIterable<FlightMessage>,
    headers: Record<string, string> = {},
    onAck?: (ack: Buffer) => void,
  ): Promise<Buffer[]> {
    const call = this.client.makeBidiStreamRequest(
      this.path('DoPut'),
      (b: Buffer) => b,
      this.method('DoPut').responseDeserialize as (b: Buffer) => Buffer,
      this.metadata(headers),
    );
    const acks: Buffer[] = [];
    let sendFailure: Error | undefined;
    const done = new Promise<Buffer[]>((resolve, reject) => {
      call.on('data', (ack: Buffer) => {
        acks.push(ack);
        onAck?.(ack);
      });
      call.on('error', (err: ServiceError) => reject(sendFailure ?? this.failure('DoPut', err)));
      call.on('status', (s: { code: number }) => s.code === 0 && resolve(acks));
    });
    const send = async (): Promise<void> => {
      let first = true;
      for await (const m of messages) {
        const wire = !first && m.wire ? m.wire : this.encodeFlightData(m, first ? descriptor(path) : undefined);
        first = false;
        if (!call.write(wire)) await new Promise((resolve) => call.once('drain', resolve));
      }
      call.end();
    };
    // Messages that cannot be read or encoded end the put: the server discards what it got.
    send().catch((err: unknown) => {
      sendFailure = err as Error;
      call.cancel();
    });
    return done;
  }

  /**
   * Reads a whole flight: every endpoint's stream, joined into one Arrow IPC stream (schema
   * once). `onMessage` hears each message's size as it arrives (progress).
   */
  async getStream(
    path: string | readonly string[],
    onMessage?: (bytes: number) => void,
    headers: Record<string, string> = {},
  ): Promise<Buffer> {
    const info = await this.getFlightInfo(path, headers);
    const messages: FlightMessage[] = [];
    for (const [i, endpoint] of info.endpoints.entries()) {
      let schema = true;
      for await (const m of this.doGet(endpoint.ticket)) {
        if (schema && i > 0) {
          schema = false; // each endpoint's stream repeats the schema
          continue;
        }
        schema = false;
        onMessage?.(m.header.length + m.body.length);
        messages.push(m);
      }
    }
    return toIpcStream(messages);
  }

  /** Writes an Arrow IPC stream (schema, dictionaries, batches) as the flight at `path`. */
  putStream(
    path: string | readonly string[],
    ipcStream: Uint8Array,
    headers?: Record<string, string>,
  ): Promise<Buffer[]> {
    return this.doPut(path, encapsulatedMessages(ipcStream), headers);
  }

  close(): void {
    this.client.close();
  }

  private encodeFlightData(m: FlightMessage, d?: PbDescriptor): Buffer {
    const encode = this.method('DoPut').requestSerialize as (v: FlightMessage) => Buffer;
    const data = encode(m);
    if (!d) return data;
    const desc = this.method('GetFlightInfo').requestSerialize(d as never);
    const tag = Buffer.from([0x0a, ...varint(desc.length)]);
    return Buffer.concat([tag, desc, data]);
  }

  private unary<T>(
    name: string,
    request: unknown,
    headers: Record<string, string> = {},
    deadline?: number,
  ): Promise<T> {
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

  private async *stream<T>(
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

  private async collect<T>(
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

  private failure(method: string, err: ServiceError): FlightCallError {
    return new FlightCallError(err.code ?? 2, err.details ?? err.message, method);
  }
}

function deadlineIn(timeoutMs: number | undefined): number | undefined {
  return timeoutMs === undefined ? undefined : Date.now() + timeoutMs;
}

function descriptor(path: string | readonly string[]): PbDescriptor {
  return { type: 'PATH', cmd: Buffer.alloc(0), path: typeof path === 'string' ? path.split('/') : [...path] };
}

function toFlightInfo(info: PbFlightInfo): FlightInfo {
  return {
    path: info.flight_descriptor.path,
    schemaHeader: unwrapSchema(info.schema),
    endpoints: info.endpoint.map((e) => ({
      ticket: e.ticket.ticket,
      locations: e.location.map((l) => l.uri),
      ...(e.expiration_time ? { expiresAt: new Date(e.expiration_time.seconds * 1000) } : {}),
    })),
    totalRecords: info.total_records,
    totalBytes: info.total_bytes,
    appMetadata: info.app_metadata ?? Buffer.alloc(0),
  };
}

/** The flatbuffer inside an encapsulated schema message; INTERNAL when it is not one. */
function unwrapSchema(encapsulated: Buffer): Buffer {
  try {
    return unwrapMessage(encapsulated);
  } catch (err) {
    if (err instanceof InvalidMessageError) throw new FlightCallError(13, `the schema is not an IPC message`, 'schema');
    throw err;
  }
}

function varint(n: number): number[] {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return out;
}
