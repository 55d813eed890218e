import { Pieces } from './pieces.js';

/** One Arrow IPC message after the schema: a dictionary batch or a record batch. */
export interface Frame {
  kind: 'dictionary' | 'batch';
  /** The bare flatbuffer `Message`. */
  header: Buffer;
  /**
   * The message body (8-byte aligned by the sender), as one buffer. When the body is held
   * in pieces (`bodyPieces`) reading this joins them, a copy: the data path reads
   * `bodyPieces` (see bodyOf, bodyLength).
   */
  readonly body: Buffer;
  /** The body as the pieces it arrived in, when it is not one buffer. */
  bodyPieces?: Pieces | undefined;
  appMetadata: Buffer;
  /**
   * The 5-byte gRPC message prefix, then FlightData bytes holding exactly header,
   * app_metadata and body: sent as they are when set (see flight/grpc-internals.ts).
   */
  prefixed?: Buffer;
  /** When the message is held in pieces: the bytes that follow `prefixed`, in order. */
  prefixedRest?: readonly Buffer[] | undefined;
  rows: number;
}

/** What holds a body: one buffer, or pieces besides (Frame, FlightDataFrame). */
export interface HasBody {
  readonly body: Buffer;
  bodyPieces?: Pieces | undefined;
}

/** The body to read or copy from, without joining pieces. */
export function bodyOf(m: HasBody): Buffer | Pieces {
  return m.bodyPieces ?? m.body;
}

/** The body's length, without joining pieces. */
export function bodyLength(m: HasBody): number {
  return (m.bodyPieces ?? m.body).length;
}

/** The body as buffers to write in order (views of the pieces, or the one buffer). */
export function bodyBuffers(m: HasBody): readonly Buffer[] {
  return m.bodyPieces ? m.bodyPieces.parts : [m.body];
}

/** Bytes of the whole gRPC message `prefixed` starts, with what follows it. */
export function prefixedLength(m: { prefixed?: Buffer; prefixedRest?: readonly Buffer[] | undefined }): number {
  let n = m.prefixed?.length ?? 0;
  for (const b of m.prefixedRest ?? []) n += b.length;
  return n;
}

/**
 * Gives `target` the body of `from` without joining pieces: `body` is then a getter that
 * joins them on first use (once: Pieces keeps the joined copy).
 */
export function withBodyOf<T extends object>(target: T, from: HasBody): T & HasBody {
  const pieces = from.bodyPieces;
  if (!pieces) return Object.assign(target, { body: from.body });
  Object.defineProperty(target, 'body', { get: () => pieces.join(), enumerable: true, configurable: true });
  return Object.assign(target, { bodyPieces: pieces }) as T & HasBody;
}
