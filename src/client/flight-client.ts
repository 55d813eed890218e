import type { Metadata, ServiceError } from '@grpc/grpc-js';
import { encapsulatedMessages, toIpcStream } from '../ipc/ipc-stream.js';
import { bodyLength, withBodyOf } from '../ipc/frame.js';
import { isDecodeError, type DecodedFlightData } from '../flight/flight-data-codec.js';
import type { PbDescriptor, PbFlightInfo, PbPollInfo } from '../flight/proto.js';
import { FlightCallError, FlightChannel, type FlightClientOptions } from './channel.js';
import {
  deadlineIn,
  descriptor,
  toFlightInfo,
  unwrapSchema,
  withDescriptor,
  type FlightInfo,
  type FlightMessage,
} from './wire.js';

export { FlightCallError, type FlightClientOptions } from './channel.js';
export type { FlightInfo, FlightMessage } from './wire.js';
export { GrpcStatus as FlightStatus, statusName } from '../flight/status.js';

/**
 * A typed Arrow Flight client over grpc-js, sharing the server's FlightData codec (batch
 * bodies are never copied into protobuf objects): for the admin CLI, the cluster's calls to
 * other nodes and tests. Every call that fails rejects with a FlightCallError carrying the
 * gRPC status code. The channel and its call plumbing are `channel.ts`; what goes on the
 * wire besides FlightData is `wire.ts`.
 */
export class FlightClient {
  private readonly channel: FlightChannel;

  constructor(location: string, options: FlightClientOptions = {}) {
    this.channel = new FlightChannel(location, options);
  }

  /** Handshake: sends `headers` (credentials) and returns the response headers (a token, for one). */
  handshake(headers: Record<string, string> = {}): Promise<Record<string, string>> {
    const call = this.channel.bidi<object, unknown>('Handshake', headers);
    return new Promise((resolve, reject) => {
      const answer: Record<string, string> = {};
      call.on('metadata', (md: Metadata) => {
        for (const [key, value] of Object.entries(md.getMap())) answer[key] = value.toString();
      });
      call.on('data', () => undefined);
      call.on('error', (err: ServiceError) => reject(this.channel.failure('Handshake', err)));
      call.on('status', (s: { code: number }) => s.code === 0 && resolve(answer));
      call.write({ protocol_version: 0, payload: Buffer.alloc(0) });
      call.end();
    });
  }

  async listFlights(prefix = ''): Promise<FlightInfo[]> {
    const infos = await this.channel.collect<PbFlightInfo>('ListFlights', { expression: Buffer.from(prefix) });
    return infos.map(toFlightInfo);
  }

  /** GetFlightInfo; `headers` for this call only (e.g. `x-tierflight-wait-ms`). */
  async getFlightInfo(path: string | readonly string[], headers: Record<string, string> = {}): Promise<FlightInfo> {
    return toFlightInfo(await this.channel.unary<PbFlightInfo>('GetFlightInfo', descriptor(path), headers));
  }

  /** The flight's schema as an IPC message flatbuffer. */
  async getSchema(path: string | readonly string[]): Promise<Buffer> {
    const { schema } = await this.channel.unary<{ schema: Buffer }>('GetSchema', descriptor(path));
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
    for await (const result of this.channel.stream<{ body: Buffer }>(
      'DoAction',
      request,
      headers,
      deadlineIn(timeoutMs),
    ))
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
    return this.channel.unary<PbFlightInfo>('GetFlightInfo', descriptor(path), headers, deadlineIn(timeoutMs));
  }

  /** PollFlightInfo as protobuf PollInfo, for a node handing on its owner's answer. */
  pollInfoMessage(
    path: readonly string[],
    headers: Record<string, string> = {},
    timeoutMs?: number,
  ): Promise<PbPollInfo> {
    return this.channel.unary<PbPollInfo>('PollFlightInfo', descriptor(path), headers, deadlineIn(timeoutMs));
  }

  /** ListFlights as protobuf FlightInfos, for a node merging its members' lists. */
  listFlightMessages(
    prefix: string,
    headers: Record<string, string> = {},
    timeoutMs?: number,
  ): Promise<PbFlightInfo[]> {
    return this.channel.collect<PbFlightInfo>(
      'ListFlights',
      { expression: Buffer.from(prefix) },
      headers,
      deadlineIn(timeoutMs),
    );
  }

  /** Whether the server answers (ListActions) within `timeoutMs`; rejects with the status otherwise. */
  async ping(timeoutMs: number, headers: Record<string, string> = {}): Promise<void> {
    await this.channel.collect('ListActions', {}, headers, Date.now() + timeoutMs);
  }

  /** DoAction whose results are JSON documents (every built-in verb). */
  async action<T = unknown>(type: string, body: Buffer | object = Buffer.alloc(0)): Promise<T[]> {
    const out: T[] = [];
    for await (const result of this.doAction(type, body)) out.push(JSON.parse(result.toString('utf8')) as T);
    return out;
  }

  listActions(): Promise<{ type: string; description: string }[]> {
    return this.channel.collect('ListActions', {});
  }

  /** DoGet: the stream's messages, schema first, as slices of what grpc-js received. */
  async *doGet(ticket: Buffer, headers: Record<string, string> = {}): AsyncGenerator<FlightMessage> {
    for await (const m of this.channel.stream<DecodedFlightData>('DoGet', { ticket }, headers)) {
      if (isDecodeError(m))
        throw new FlightCallError(13, `a DoGet message is not FlightData: ${m.decodeError}`, 'DoGet');
      yield withBodyOf(
        { header: m.header, appMetadata: m.appMetadata, ...(m.prefixed ? { prefixed: m.prefixed } : {}) },
        m,
      );
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
    const call = this.channel.bidi<Buffer, Buffer>('DoPut', headers, (b) => b);
    const acks: Buffer[] = [];
    let sendFailure: Error | undefined;
    const done = new Promise<Buffer[]>((resolve, reject) => {
      call.on('data', (ack: Buffer) => {
        acks.push(ack);
        onAck?.(ack);
      });
      call.on('error', (err: ServiceError) => reject(sendFailure ?? this.channel.failure('DoPut', err)));
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
        onMessage?.(m.header.length + bodyLength(m));
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
    this.channel.close();
  }

  /** FlightData bytes of a message; a put's first carries the descriptor too. */
  private encodeFlightData(m: FlightMessage, d?: PbDescriptor): Buffer {
    const data = this.channel.serializer<FlightMessage>('DoPut')(m);
    return d ? withDescriptor(data, this.channel.serializer<PbDescriptor>('GetFlightInfo')(d)) : data;
  }
}
