import { encapsulatedMessages } from '../../src/ipc/ipc-stream.js';
import path from 'node:path';
import { Client, credentials, Metadata, type ServiceError } from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { tableFromArrays, tableToIPC } from 'apache-arrow';
import { ROOT } from '../setup/python-env.js';

/**
 * A deliberately low-level Flight client for bad-input tests: it sends whatever bytes it
 * is given. (Interoperability is proven with pyarrow; this exists to misbehave.)
 */
const pkg = protoLoader.loadSync(path.join(ROOT, 'proto/flight.proto'), {
  keepCase: true,
  longs: Number,
  bytes: Buffer,
  enums: String,
  defaults: true,
});
type Method = { requestSerialize: (v: unknown) => Buffer; responseDeserialize: (b: Buffer) => unknown };
const service = pkg['arrow.flight.protocol.FlightService'] as unknown as Record<string, Method>;
const method = (name: string): Method => service[name] as Method;

/** FlightData encoded by protobufjs, independent of the server's own codec. */
export function flightData(fields: {
  descriptor?: { type: 'PATH' | 'CMD'; path?: string[]; cmd?: Buffer };
  header?: Buffer;
  body?: Buffer;
  appMetadata?: Buffer;
}): Buffer {
  return method('DoPut').requestSerialize({
    ...(fields.descriptor ? { flight_descriptor: fields.descriptor } : {}),
    data_header: fields.header ?? Buffer.alloc(0),
    data_body: fields.body ?? Buffer.alloc(0),
    app_metadata: fields.appMetadata ?? Buffer.alloc(0),
  });
}

/** Request messages encoded by protobufjs (Ticket, FlightDescriptor, Action). */
export const encodeRequest = {
  ticket: (ticket: Buffer): Buffer => method('DoGet').requestSerialize({ ticket }),
  descriptor: (d: { type: 'PATH' | 'CMD'; path?: string[]; cmd?: Buffer }): Buffer =>
    method('GetFlightInfo').requestSerialize(d),
  action: (type: string, body: Buffer): Buffer => method('DoAction').requestSerialize({ type, body }),
};

/** A DoGet response message decoded by protobufjs. */
export function decodeFlightData(b: Buffer): { header: Buffer; body: Buffer; appMetadata: Buffer } {
  const m = method('DoGet').responseDeserialize(b) as { data_header: Buffer; data_body: Buffer; app_metadata: Buffer };
  return { header: m.data_header, body: m.data_body, appMetadata: m.app_metadata };
}

/** Splits an Arrow IPC stream into (header, body) pairs (the server's own framing code). */
export const ipcMessages = encapsulatedMessages;

/** A small valid flight: schema message plus `batches` record batches of `rows` int32s. */
export function sampleMessages(
  rows = 4,
  batches = 2,
): { schema: { header: Buffer; body: Buffer }; batches: { header: Buffer; body: Buffer }[] } {
  const table = tableFromArrays({ v: Int32Array.from({ length: rows }, (_, i) => i) });
  const once = ipcMessages(tableToIPC(table, 'stream'));
  const [schema, batch] = once as [{ header: Buffer; body: Buffer }, { header: Buffer; body: Buffer }];
  return { schema, batches: Array.from({ length: batches }, () => batch) };
}

export interface CallOutcome {
  code: number;
  details: string;
  results: Buffer[];
  /** The `x-tierflight-retry` trailer of a failed call. */
  retry?: string;
}

const retryOf = (err: ServiceError): { retry?: string } => {
  const value = err.metadata?.get('x-tierflight-retry')[0];
  return value === undefined ? {} : { retry: value.toString() };
};

export class RawFlightClient {
  private readonly client: Client;

  constructor(location: string, options: Record<string, number> = {}) {
    this.client = new Client(location.replace(/^grpc(\+tcp)?:\/\//, ''), credentials.createInsecure(), {
      'grpc.max_receive_message_length': 1 << 30,
      'grpc.max_send_message_length': 1 << 30,
      ...options,
    });
  }

  /** DoPut with raw frames; resolves with the final status and the PutResults. */
  doPut(
    frames: Buffer[],
    metadata = new Metadata(),
    options: { deadlineMs?: number; readAcks?: boolean } = {},
  ): Promise<CallOutcome> {
    const call = this.client.makeBidiStreamRequest(
      '/arrow.flight.protocol.FlightService/DoPut',
      (b: Buffer) => b,
      (b: Buffer) => b,
      metadata,
      options.deadlineMs === undefined ? {} : { deadline: Date.now() + options.deadlineMs },
    );
    const results: Buffer[] = [];
    return new Promise((resolve) => {
      // A client that never reads its acknowledgements leaves the stream paused.
      if (options.readAcks !== false) call.on('data', (b: Buffer) => results.push(b));
      call.on('error', (err: ServiceError) =>
        resolve({ code: err.code, details: err.details, results, ...retryOf(err) }),
      );
      call.on('status', (s: { code: number; details: string }) => {
        if (s.code === 0) resolve({ code: 0, details: s.details, results });
      });
      for (const f of frames) call.write(f);
      call.end();
    });
  }

  /** Any unary call with raw request bytes; resolves with its status and the response bytes. */
  unary(name: string, request: Buffer, metadata = new Metadata()): Promise<CallOutcome> {
    return new Promise((resolve) => {
      this.client.makeUnaryRequest(
        `/arrow.flight.protocol.FlightService/${name}`,
        (b: Buffer) => b,
        (b: Buffer) => b,
        request,
        metadata,
        (err: ServiceError | null, res?: Buffer) =>
          resolve(
            err
              ? { code: err.code, details: err.details, results: [], ...retryOf(err) }
              : { code: 0, details: '', results: [res!] },
          ),
      );
    });
  }

  /** Any server-streaming call with raw request bytes; resolves with its status and every message. */
  serverStream(name: string, request: Buffer, metadata = new Metadata()): Promise<CallOutcome> {
    const call = this.client.makeServerStreamRequest(
      `/arrow.flight.protocol.FlightService/${name}`,
      (b: Buffer) => b,
      (b: Buffer) => b,
      request,
      metadata,
    );
    const results: Buffer[] = [];
    return new Promise((resolve) => {
      call.on('data', (b: Buffer) => results.push(b));
      call.on('error', (err: ServiceError) =>
        resolve({ code: err.code, details: err.details, results, ...retryOf(err) }),
      );
      call.on('status', (s: { code: number; details: string }) => {
        if (s.code === 0) resolve({ code: 0, details: s.details, results });
      });
    });
  }

  /** Starts a DoGet and returns the raw stream (FlightData bytes), for tests that stall or cancel it. */
  doGetStream(ticket: string): NodeJS.ReadableStream & { cancel(): void } {
    return this.client.makeServerStreamRequest(
      '/arrow.flight.protocol.FlightService/DoGet',
      (t: { ticket: Buffer }) => method('DoGet').requestSerialize(t),
      (b: Buffer) => b,
      { ticket: Buffer.from(ticket) },
    );
  }

  close(): void {
    this.client.close();
  }
}
