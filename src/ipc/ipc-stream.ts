import { InvalidMessageError, readMessageHeader } from './message-header.js';

/**
 * Arrow IPC message framing, in one place: an encapsulated message is the continuation
 * marker, the flatbuffer's padded length, the flatbuffer padded to 8 bytes, and the body
 * padded to 8 bytes; a stream ends with the marker and a zero length. Streams, files (the
 * disk tiers' `file-layout.ts`), durable objects, split batches and FlightInfo schemas are
 * all framed (and unframed) here.
 */

/** The continuation marker before each message's length (Arrow ≥ 0.15). */
export const CONTINUATION = 0xffffffff;
/** Continuation marker and a zero length: the end of a stream. */
export const END_OF_STREAM = Buffer.from([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);

/** One encapsulated message of an Arrow IPC stream: its flatbuffer and its body. */
export interface IpcMessage {
  header: Buffer;
  body: Buffer;
}

export function pad8(n: number): number {
  return (n + 7) & ~7;
}

/** Bytes an encapsulated message occupies: prefix, padded flatbuffer, padded body. */
export function framedSize(headerLength: number, bodyLength: number): number {
  return 8 + pad8(headerLength) + pad8(bodyLength);
}

/** The 8-byte prefix of an encapsulated message whose flatbuffer is `headerLength` long. */
export function messagePrefix(headerLength: number): Buffer {
  const out = Buffer.allocUnsafe(8);
  out.writeUInt32LE(CONTINUATION, 0);
  out.writeInt32LE(pad8(headerLength), 4);
  return out;
}

const ZEROS = Buffer.alloc(8);

/** Zero bytes that pad `n` up to a multiple of 8. */
export function paddingFor(n: number): Buffer {
  return ZEROS.subarray(0, pad8(n) - n);
}

/** A message's encapsulated bytes, as the pieces to write one after the other (no copy). */
export function encapsulate({ header, body }: IpcMessage): Buffer[] {
  return [messagePrefix(header.length), header, paddingFor(header.length), body, paddingFor(body.length)];
}

/**
 * The schema as an encapsulated IPC message without a body (continuation marker, padded
 * length, the flatbuffer), as FlightInfo.schema and SchemaResult.schema carry it.
 */
export function encapsulateSchema(header: Buffer): Buffer {
  return Buffer.concat([messagePrefix(header.length), header, paddingFor(header.length)]);
}

/**
 * The flatbuffer of one encapsulated message at the start of `buf` (with or without the
 * continuation marker), checked to be a message; InvalidMessageError when it is not.
 */
export function unwrapMessage(buf: Buffer): Buffer {
  const at = buf.length >= 8 && buf.readUInt32LE(0) === CONTINUATION ? 8 : 4;
  if (buf.length < at) throw new InvalidMessageError(`an encapsulated message needs ${at} bytes of prefix`);
  const length = buf.readInt32LE(at - 4);
  if (length < 0 || at + length > buf.length) throw new InvalidMessageError('the encapsulated message is cut short');
  const header = buf.subarray(at, at + length);
  readMessageHeader(header);
  return header;
}

/**
 * The messages of an Arrow IPC stream (as `tableToIPC(t, 'stream')` or
 * `pyarrow.ipc.new_stream` write it), as slices of it. Accepts the pre-0.15 framing
 * without continuation marker too; stops at the end-of-stream marker.
 */
export function encapsulatedMessages(stream: Uint8Array): IpcMessage[] {
  const buf = Buffer.from(stream.buffer, stream.byteOffset, stream.byteLength);
  const out: IpcMessage[] = [];
  let pos = 0;
  while (pos + 4 <= buf.length) {
    const continued = buf.readUInt32LE(pos) === CONTINUATION;
    const lengthAt = continued ? pos + 4 : pos;
    if (lengthAt + 4 > buf.length) break;
    const length = buf.readInt32LE(lengthAt);
    if (length === 0) break;
    const headerAt = lengthAt + 4;
    if (length < 0 || headerAt + length > buf.length)
      throw new Error(`IPC stream: message at byte ${pos} is cut short`);
    const header = buf.subarray(headerAt, headerAt + length);
    const { bodyLength } = readMessageHeader(header);
    const bodyAt = headerAt + length;
    if (bodyAt + bodyLength > buf.length) throw new Error(`IPC stream: the body at byte ${bodyAt} is cut short`);
    out.push({ header, body: buf.subarray(bodyAt, bodyAt + bodyLength) });
    pos = bodyAt + bodyLength;
  }
  return out;
}

/** An Arrow IPC stream of the given messages (schema first), with its end-of-stream marker. */
export function toIpcStream(messages: Iterable<IpcMessage>): Buffer {
  const parts: Buffer[] = [];
  for (const m of messages) parts.push(...encapsulate(m));
  parts.push(END_OF_STREAM);
  return Buffer.concat(parts);
}
