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
import { bodyOf, withBodyOf } from '../ipc/frame.js';
import { Pieces } from '../ipc/pieces.js';

export const DescriptorType = { UNKNOWN: 0, PATH: 1, CMD: 2 } as const;

export interface WireDescriptor {
  type: number;
  cmd: Buffer;
  path: string[];
}

export interface FlightDataFrame {
  descriptor?: WireDescriptor;
  header: Buffer;
  /** The body as one buffer; for a message received in pieces, reading it joins them (a copy). */
  readonly body: Buffer;
  /** The body as the pieces it was received in (large messages; see grpc-internals.ts). */
  bodyPieces?: Pieces | undefined;
  appMetadata: Buffer;
  /** The message exactly as received (for one received in pieces, joined on first use). */
  readonly wire: Buffer;
  /** True when `wire` holds only header, metadata and body, so it can be replayed as is. */
  replayable: boolean;
  /** `wire` with the gRPC message prefix grpc-js received it with, when that is at hand. */
  prefixed?: Buffer;
  /** For a message received in pieces: the rest of it, after `prefixed`. */
  prefixedRest?: readonly Buffer[] | undefined;
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

/**
 * Messages the receive decoder (grpc-internals.ts) kept in pieces: the buffer it hands
 * grpc-js holds the gRPC prefix and the message's first bytes, and is the key here to the
 * views of the socket reads that hold the rest.
 */
const receivedRest = new WeakMap<ArrayBufferLike, Buffer[]>();

/** Messages received in pieces: kept so, or joined (a field other than the body past the head). */
export const piecesReceived = { kept: 0, joined: 0 };

/** Called by the receive decoder for a message it hands over as `head` plus `rest`. */
export function receivedInPieces(head: Buffer, rest: Buffer[]): void {
  receivedRest.set(head.buffer, rest);
}

/** The fields of one FlightData message, as one walk over its bytes reads them. */
interface WireFields {
  header: Buffer;
  body: Buffer;
  appMetadata: Buffer;
  descriptor?: WireDescriptor;
  /** Nothing but header, metadata and body. */
  replayable: boolean;
  /** The walk stopped at data_body's tag (`stopAtBody`): its length and bytes are next. */
  atBody: boolean;
}

/** Reads FlightData fields from `r`; with `stopAtBody`, stops right after data_body's tag. */
function readFields(r: ProtoReader, stopAtBody = false): WireFields {
  const f: WireFields = { header: EMPTY, body: EMPTY, appMetadata: EMPTY, replayable: true, atBody: false };
  while (!r.done()) {
    const tag = r.varint();
    const field = Math.floor(tag / 8);
    const wireType = tag & 7;
    if (wireType === 2 && field === 1000 && stopAtBody) {
      f.atBody = true;
      return f;
    }
    if (wireType === 2 && field === 2) f.header = r.bytes();
    else if (wireType === 2 && field === 1000) f.body = r.bytes();
    else if (wireType === 2 && field === 3) f.appMetadata = r.bytes();
    else if (wireType === 2 && field === 1) {
      f.descriptor = decodeDescriptor(r.bytes());
      f.replayable = false;
    } else {
      r.skip(wireType);
      f.replayable = false;
    }
  }
  return f;
}

/** grpc-js deserializer: never throws (a throw would become INTERNAL), returns an error marker. */
export function decodeFlightData(wire: Buffer): DecodedFlightData {
  const rest = wire.byteOffset >= GRPC_PREFIX_BYTES ? receivedRest.get(wire.buffer) : undefined;
  if (rest) {
    receivedRest.delete(wire.buffer);
    return decodePieces(wire, rest);
  }
  try {
    const { header, body, appMetadata, descriptor, replayable } = readFields(new ProtoReader(wire));
    const prefixed = replayable ? receivedPrefixed(wire) : undefined;
    return {
      header,
      body,
      appMetadata,
      wire,
      replayable,
      ...(descriptor ? { descriptor } : {}),
      ...(prefixed ? { prefixed } : {}),
    };
  } catch (err) {
    return { decodeError: `malformed FlightData: ${(err as Error).message}` };
  }
}

/**
 * A message received as `head` (its first bytes, after the gRPC prefix) and `rest`. When
 * every field but data_body lies in the head and the body runs to the message's end (how
 * every Flight client writes FlightData), the body is kept as pieces: a view of the head's
 * end, then the rest. Otherwise the message is joined and decoded as one buffer.
 */
function decodePieces(head: Buffer, rest: Buffer[]): DecodedFlightData {
  const prefixed = Buffer.from(head.buffer, head.byteOffset - GRPC_PREFIX_BYTES, head.length + GRPC_PREFIX_BYTES);
  let restLength = 0;
  for (const b of rest) restLength += b.length;
  const total = head.length + restLength;
  let frame: FlightDataFrame | undefined;
  try {
    frame = piecesFrame(head, rest, total, prefixed);
  } catch (err) {
    if (!(err instanceof WireError)) throw err;
  }
  if (frame) {
    piecesReceived.kept++;
    return frame;
  }
  piecesReceived.joined++;
  // Joined behind its prefix, so it can still be sent back as it is.
  const joined = Buffer.concat([prefixed, ...rest], GRPC_PREFIX_BYTES + total);
  return decodeFlightData(joined.subarray(GRPC_PREFIX_BYTES));
}

function piecesFrame(head: Buffer, rest: Buffer[], total: number, prefixed: Buffer): FlightDataFrame | undefined {
  const r = new ProtoReader(head);
  const { header, appMetadata, descriptor, replayable, atBody } = readFields(r, true);
  if (!atBody) return undefined;
  const length = r.varint();
  // The body must be the message's last field, running past the head into the rest.
  if (r.pos + length !== total || r.pos + length <= head.length) return undefined;
  const bodyPieces = new Pieces([head.subarray(r.pos), ...rest]);
  // Sent back as received only when it holds nothing but header, metadata and body.
  const frame = {
    header,
    appMetadata,
    replayable,
    ...(replayable ? { prefixed, prefixedRest: rest } : {}),
    ...(descriptor ? { descriptor } : {}),
  };
  let joined: Buffer | undefined;
  Object.defineProperty(frame, 'wire', {
    get: () => (joined ??= Buffer.concat([head, ...rest], total)),
    enumerable: true,
    configurable: true,
  });
  return withBodyOf(frame, { body: EMPTY, bodyPieces }) as unknown as FlightDataFrame;
}

/**
 * A FlightData message preceded by its 5-byte gRPC prefix: exactly the bytes of one gRPC
 * message on the wire. With `installPrefixedSend` in place grpc-js sends these bytes as
 * they are instead of copying the message into a newly allocated frame.
 */
export class PrefixedFlightData {
  constructor(
    readonly bytes: Buffer,
    /** The rest of the message, after `bytes`, when it is held in pieces. */
    readonly rest: readonly Buffer[] = [],
  ) {}
}

/** A message to send: raw bytes to pass through, prefixed bytes, or parts to frame. */
export type OutgoingFlightData =
  | Buffer
  | PrefixedFlightData
  | { header: Buffer; readonly body: Buffer; bodyPieces?: Pieces | undefined; appMetadata?: Buffer };

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
  if (msg instanceof PrefixedFlightData) {
    const bytes = msg.bytes.subarray(GRPC_PREFIX_BYTES);
    return msg.rest.length === 0 ? bytes : Buffer.concat([bytes, ...msg.rest]);
  }
  const body = bodyOf(msg);
  const out = allocateFlightData(msg.header.length, msg.appMetadata ?? EMPTY, body.length);
  msg.header.copy(out.header);
  body.copy(out.body);
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
