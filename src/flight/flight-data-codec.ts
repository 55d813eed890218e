/**
 * Our own protobuf codec for `FlightData` (and the tiny `PutResult`), so batch bodies
 * never pass through protobuf objects. grpc-js hands the deserializer one Buffer per
 * message (it concatenated the frames once); `data_header`, `data_body` and
 * `app_metadata` are slices of it, never copies. On the way out, a stored message whose
 * received bytes held only those three fields is sent as those same bytes, behind the
 * gRPC prefix it arrived with (see grpc-internals.ts).
 *
 * Field numbers (Flight.proto): descriptor = 1, data_header = 2, app_metadata = 3,
 * data_body = 1000. FlightDescriptor: type = 1 (enum), cmd = 2, path = 3 (repeated).
 */

import { allocateFlightData, GRPC_PREFIX_BYTES, varintSize, writeVarint } from '../ipc/flight-data-layout.js';

export const DescriptorType = { UNKNOWN: 0, PATH: 1, CMD: 2 } as const;

export interface WireDescriptor {
  type: number;
  cmd: Buffer;
  path: string[];
}

export interface FlightDataFrame {
  descriptor?: WireDescriptor;
  header: Buffer;
  body: Buffer;
  appMetadata: Buffer;
  /** The message exactly as received. */
  wire: Buffer;
  /** True when `wire` holds only header, metadata and body, so it can be replayed as is. */
  replayable: boolean;
  /** `wire` with the gRPC message prefix grpc-js received it with, when that is at hand. */
  prefixed?: Buffer;
}

/** What the deserializer returns for bytes that are not a FlightData message. */
export interface FlightDataDecodeError {
  decodeError: string;
}

export type DecodedFlightData = FlightDataFrame | FlightDataDecodeError;

export function isDecodeError(m: DecodedFlightData): m is FlightDataDecodeError {
  return (m as FlightDataDecodeError).decodeError !== undefined;
}

const EMPTY: Buffer = Buffer.alloc(0);
const utf8 = new TextDecoder('utf-8', { fatal: true });

class WireError extends Error {}

class ProtoReader {
  pos = 0;
  constructor(
    readonly buf: Buffer,
    readonly end = buf.length,
  ) {}

  done(): boolean {
    return this.pos >= this.end;
  }

  varint(): number {
    let result = 0;
    let shift = 0;
    for (;;) {
      if (this.pos >= this.end) throw new WireError('truncated varint');
      const byte = this.buf[this.pos++] as number;
      if (shift < 49) {
        result += (byte & 0x7f) * 2 ** shift;
      } else if ((byte & 0x7f) !== 0) {
        throw new WireError('varint too large');
      }
      if ((byte & 0x80) === 0) return result;
      shift += 7;
      if (shift > 63) throw new WireError('varint too long');
    }
  }

  bytes(): Buffer {
    const len = this.varint();
    const start = this.pos;
    if (len > this.end - start) throw new WireError(`field length ${len} runs past the message end`);
    this.pos = start + len;
    return this.buf.subarray(start, this.pos);
  }

  skip(wireType: number): void {
    switch (wireType) {
      case 0:
        this.varint();
        return;
      case 1:
        this.advance(8);
        return;
      case 2:
        this.bytes();
        return;
      case 5:
        this.advance(4);
        return;
      default:
        throw new WireError(`unsupported wire type ${wireType}`);
    }
  }

  private advance(n: number): void {
    if (this.pos + n > this.end) throw new WireError('truncated field');
    this.pos += n;
  }
}

function decodeDescriptor(buf: Buffer): WireDescriptor {
  const r = new ProtoReader(buf);
  const d: WireDescriptor = { type: 0, cmd: EMPTY, path: [] };
  while (!r.done()) {
    const tag = r.varint();
    const field = Math.floor(tag / 8);
    const wireType = tag & 7;
    if (field === 1 && wireType === 0) d.type = r.varint();
    else if (field === 2 && wireType === 2) d.cmd = r.bytes();
    else if (field === 3 && wireType === 2) d.path.push(decodeUtf8(r.bytes()));
    else r.skip(wireType);
  }
  return d;
}

function decodeUtf8(b: Buffer): string {
  try {
    return utf8.decode(b);
  } catch {
    throw new WireError('descriptor path is not valid UTF-8');
  }
}

/** grpc-js deserializer: never throws (a throw would become INTERNAL), returns an error marker. */
export function decodeFlightData(wire: Buffer): DecodedFlightData {
  try {
    const r = new ProtoReader(wire);
    const frame: FlightDataFrame = { header: EMPTY, body: EMPTY, appMetadata: EMPTY, wire, replayable: true };
    while (!r.done()) {
      const tag = r.varint();
      const field = Math.floor(tag / 8);
      const wireType = tag & 7;
      if (wireType === 2 && field === 2) frame.header = r.bytes();
      else if (wireType === 2 && field === 1000) frame.body = r.bytes();
      else if (wireType === 2 && field === 3) frame.appMetadata = r.bytes();
      else if (wireType === 2 && field === 1) {
        frame.descriptor = decodeDescriptor(r.bytes());
        frame.replayable = false;
      } else {
        r.skip(wireType);
        frame.replayable = false;
      }
    }
    if (frame.replayable) {
      const prefixed = receivedPrefixed(wire);
      if (prefixed) frame.prefixed = prefixed;
    }
    return frame;
  } catch (err) {
    return { decodeError: `malformed FlightData: ${(err as Error).message}` };
  }
}

/**
 * A FlightData message preceded by its 5-byte gRPC prefix: exactly the bytes of one gRPC
 * message on the wire. With `installPrefixedSend` in place grpc-js sends these bytes as
 * they are instead of copying the message into a newly allocated frame.
 */
export class PrefixedFlightData {
  constructor(readonly bytes: Buffer) {}
}

/** A message to send: raw bytes to pass through, prefixed bytes, or parts to frame. */
export type OutgoingFlightData = Buffer | PrefixedFlightData | { header: Buffer; body: Buffer; appMetadata?: Buffer };

/**
 * grpc-js hands the deserializer a view that starts 5 bytes into the buffer it assembled
 * the message in, right after the message's uncompressed gRPC prefix. When those 5 bytes
 * are there and say exactly that, returns the view that includes them.
 */
function receivedPrefixed(wire: Buffer): Buffer | undefined {
  if (wire.byteOffset < GRPC_PREFIX_BYTES) return undefined;
  const prefixed = Buffer.from(wire.buffer, wire.byteOffset - GRPC_PREFIX_BYTES, wire.length + GRPC_PREFIX_BYTES);
  return prefixed[0] === 0 && prefixed.readUInt32BE(1) === wire.length ? prefixed : undefined;
}

/** grpc-js serializer for outgoing FlightData. */
export function encodeFlightData(msg: OutgoingFlightData): Buffer {
  if (Buffer.isBuffer(msg)) return msg;
  if (msg instanceof PrefixedFlightData) return msg.bytes.subarray(GRPC_PREFIX_BYTES);
  const out = allocateFlightData(msg.header.length, msg.appMetadata ?? EMPTY, msg.body.length);
  msg.header.copy(out.header);
  msg.body.copy(out.body);
  return out.wire;
}

/** PutResult { bytes app_metadata = 1; } */
export function encodePutResult(appMetadata: Buffer): Buffer {
  const out = Buffer.allocUnsafe(1 + varintSize(appMetadata.length) + appMetadata.length);
  out[0] = 0x0a;
  const pos = writeVarint(out, 1, appMetadata.length);
  appMetadata.copy(out, pos);
  return out;
}

export function decodePutResult(wire: Buffer): Buffer {
  const r = new ProtoReader(wire);
  let meta = EMPTY;
  while (!r.done()) {
    const tag = r.varint();
    if (tag === 0x0a) meta = r.bytes();
    else r.skip(tag & 7);
  }
  return meta;
}
