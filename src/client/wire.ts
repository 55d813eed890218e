import { InvalidMessageError } from '../ipc/message-header.js';
import { unwrapMessage } from '../ipc/ipc-stream.js';
import type { PbDescriptor, PbFlightInfo } from '../flight/proto.js';
import { FlightCallError } from './channel.js';
import type { Pieces } from '../ipc/pieces.js';

/**
 * What the client puts on the wire and reads back besides FlightData's own codec: the
 * descriptor in front of a put's first message (protobuf field 1, written by hand so the
 * message bytes are not encoded again), FlightInfo with its schema unwrapped, deadlines.
 */

/** One Arrow IPC message as Flight carries it. */
export interface FlightMessage {
  header: Buffer;
  /** The body as one buffer; for one held in pieces (`bodyPieces`), reading it joins them. */
  readonly body: Buffer;
  bodyPieces?: Pieces | undefined;
  appMetadata?: Buffer;
  /**
   * The whole FlightData message already encoded (header, body and app_metadata only, as a
   * server received it): sent as is, not encoded again. Ignored for a put's first message,
   * which gets the descriptor.
   */
  wire?: Buffer;
  /**
   * On a message read (DoGet): the bytes received, behind their gRPC prefix, when they held
   * only header, app_metadata and body — what a server passing the message on sends as is.
   */
  prefixed?: Buffer;
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

/** A put's first message: its descriptor (field 1) in front of the FlightData bytes. */
export function withDescriptor(data: Buffer, descriptorBytes: Buffer): Buffer {
  const tag = Buffer.from([0x0a, ...varint(descriptorBytes.length)]);
  return Buffer.concat([tag, descriptorBytes, data]);
}

export function deadlineIn(timeoutMs: number | undefined): number | undefined {
  return timeoutMs === undefined ? undefined : Date.now() + timeoutMs;
}

export function descriptor(path: string | readonly string[]): PbDescriptor {
  return { type: 'PATH', cmd: Buffer.alloc(0), path: typeof path === 'string' ? path.split('/') : [...path] };
}

export function toFlightInfo(info: PbFlightInfo): FlightInfo {
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
export function unwrapSchema(encapsulated: Buffer): Buffer {
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
