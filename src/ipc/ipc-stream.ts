import { END_OF_STREAM, messagePrefix, paddingFor } from './file-layout.js';
import { readMessageHeader } from './message-header.js';

/** One encapsulated message of an Arrow IPC stream: its flatbuffer and its body. */
export interface IpcMessage {
  header: Buffer;
  body: Buffer;
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
    const continued = buf.readUInt32LE(pos) === 0xffffffff;
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
  for (const { header, body } of messages) {
    parts.push(messagePrefix(header.length), header, paddingFor(header.length), body, paddingFor(body.length));
  }
  parts.push(END_OF_STREAM);
  return Buffer.concat(parts);
}
