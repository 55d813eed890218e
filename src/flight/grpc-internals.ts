import type { Http2Server, Http2Session } from 'node:http2';
import { createRequire } from 'node:module';
import type { Server } from '@grpc/grpc-js';
import { PrefixedFlightData, receivedInPieces } from './flight-data-codec.js';

/**
 * Every place Tierflight reaches into grpc-js beyond its API, in one file. grpc-js is
 * pinned to a minor range (package.json) and each reach is guarded: it checks the shape of
 * what it touches first, and when a grpc-js release has changed it, it does nothing and
 * returns false; the server then logs a warning, reports the feature as off
 * (`tierflight_grpc_internal_active`, the start line) and works as grpc-js does by itself,
 * only slower or less tolerant. test/flight/grpc-internals.test.ts (and, for the receive
 * decoder, piecewise-receive.test.ts) asserts each one is active with the pinned grpc-js.
 * (The FlightData codec's `receivedPrefixed` also relies on how grpc-js frames received
 * messages, and checks the prefix bytes before trusting it.)
 */

/** Which of the reaches below took effect. */
export interface GrpcInternals {
  /** DoGet sends stored messages without copying them (installPrefixedSend). */
  zeroCopySend: boolean;
  /** A message written after the status is dropped (installNoMessageAfterStatus). */
  noMessageAfterStatus: boolean;
  /** Large messages are kept as the socket reads that carried them, not copied (installPiecewiseReceive). */
  piecewiseReceive: boolean;
  /** Clients may cancel many calls without losing the connection (allowHonestCancels). */
  honestCancels: boolean;
  /** 16 MiB HTTP/2 windows and 1 MiB frames (widenFlowControlWindows). */
  wideWindows: boolean;
}

/**
 * HTTP/2 flow-control window for each stream and for the connection. grpc-js leaves the
 * server at 64 KiB; measured here, a DoPut stream moved 0.35 GB/s with that and 0.92 GB/s
 * with 16 MiB windows.
 */
export const FLOW_CONTROL_WINDOW = 16 * 1024 * 1024;

/**
 * Largest HTTP/2 DATA frame we let clients send (the protocol default is 16 KiB): fewer,
 * larger frames mean less per-frame work when a DoPut streams multi-MiB batches.
 */
export const MAX_FRAME_SIZE = 1024 * 1024;

/**
 * HTTP/2 "rapid reset" protection (CVE-2023-44487): nghttp2 ends a session with GOAWAY
 * once its client has reset more than `streamResetBurst` streams and then more than
 * `streamResetRate` a second. Node's defaults (1,000, then 33/s) cut off an honest client
 * that cancels many reads, such as one that reads the first batch of many flights:
 * 3,000 cancelled DoGets on one connection got 2 GOAWAYs, and the calls in flight on it
 * failed. A burst of 10,000 and 1,000 a second lets such a client keep its connection
 * while a flood is still cut off within a second or so; each reset costs the server one
 * stream setup, and grpc.max_concurrent_streams bounds the streams open at once (Node
 * refuses streams beyond it, and closes a session that keeps opening them).
 */
export const STREAM_RESET_BURST = 10_000;
export const STREAM_RESET_RATE = 1_000;

/**
 * grpc-js has no option for the reset limits, so they go into the options it creates its
 * http2 server with (`commonServerOptions`); call before binding. Node 24 honours them;
 * Node 20 ignored them and always cut at about 1,000.
 */
export function allowHonestCancels(grpcServer: Server): boolean {
  const options = (grpcServer as unknown as { commonServerOptions?: Record<string, unknown> }).commonServerOptions;
  if (typeof options !== 'object' || options === null) return false;
  options.streamResetBurst = STREAM_RESET_BURST;
  options.streamResetRate = STREAM_RESET_RATE;
  return true;
}

/**
 * grpc-js offers no server option for HTTP/2 windows, so we reach the http2 servers it
 * created (`http2Servers`) and raise them: the SETTINGS initial window for streams (what a
 * client may send on one DoPut before we read) and each session's connection window. Call
 * after binding.
 */
export function widenFlowControlWindows(grpcServer: Server): boolean {
  const servers = (grpcServer as unknown as { http2Servers?: Map<Http2Server, unknown> }).http2Servers;
  if (!(servers instanceof Map)) return false;
  for (const http2Server of servers.keys()) {
    http2Server.updateSettings({ initialWindowSize: FLOW_CONTROL_WINDOW, maxFrameSize: MAX_FRAME_SIZE });
    http2Server.on('session', (session: Http2Session) => {
      session.setLocalWindowSize(FLOW_CONTROL_WINDOW);
    });
  }
  return true;
}

// The two wraps below are of grpc-js's server call, `BaseServerInterceptingCall`.
interface CallPrototype {
  serializeMessage?: (this: unknown, value: unknown) => Buffer;
  sendMessage?: (this: CallWithStream, message: unknown, callback?: unknown) => void;
  handleDataFrame?: (this: ReceivingCall, data: Buffer) => void;
}

/** What the piecewise receive reads of grpc-js's server call: its method and its decoder. */
interface ReceivingCall {
  handler?: { path?: unknown };
  decoder?: { tierflightPieces?: boolean };
}

/**
 * The one method whose requests are kept in pieces: its deserializer (the FlightData codec)
 * knows them. Every other call, and every client call, gets each message whole.
 */
export const PIECEWISE_METHOD = '/arrow.flight.protocol.FlightService/DoPut';

function callPrototype(): CallPrototype | undefined {
  try {
    const require = createRequire(import.meta.url);
    const mod = require('@grpc/grpc-js/build/src/server-interceptors.js') as {
      BaseServerInterceptingCall?: { prototype: CallPrototype };
    };
    return mod.BaseServerInterceptingCall?.prototype;
  } catch {
    return undefined;
  }
}

const installed = new Set<string>();

/**
 * Sends stored messages as they are. grpc-js frames every outgoing message by allocating
 * a new buffer of 5 + N bytes and copying the serialized message into it
 * (`serializeMessage`). For DoGet that is a fresh multi-MiB allocation per batch, and V8
 * answers that much external memory with a major GC every few dozen MiB: measured here, a
 * third of the server's CPU during a DoGet went to marking and sweeping, a tenth to the
 * copy. Stored messages already sit behind their gRPC prefix (the receive buffer grpc-js
 * built, or the buffer a disk tier reads into), so for a `PrefixedFlightData` grpc-js
 * sends those bytes as they are; every other message takes grpc-js's own path.
 */
export function installPrefixedSend(): boolean {
  if (installed.has('prefixed-send')) return true;
  const proto = callPrototype();
  const original = proto?.serializeMessage;
  const send = proto?.sendMessage;
  if (!proto || typeof original !== 'function' || original.length !== 1) return false;
  if (typeof send !== 'function' || send.length !== 2) return false;
  proto.serializeMessage = function (this: unknown, value: unknown): Buffer {
    return value instanceof PrefixedFlightData ? value.bytes : original.call(this, value);
  };
  // A message held in pieces (received that way) goes as one write of each piece, corked so
  // http2 takes them in one writev; the caller hears back once the last is written.
  proto.sendMessage = function (this: CallWithStream, message: unknown, callback?: unknown): void {
    if (!(message instanceof PrefixedFlightData) || message.rest.length === 0) {
      send.call(this, message, callback);
      return;
    }
    const stream = this.stream;
    const corked = typeof stream?.cork === 'function' && typeof stream.uncork === 'function';
    if (corked) stream.cork?.();
    try {
      send.call(this, new PrefixedFlightData(message.bytes), ignore);
      const last = message.rest.length - 1;
      message.rest.forEach((piece, i) =>
        send.call(this, new PrefixedFlightData(piece), i === last ? callback : ignore),
      );
    } finally {
      if (corked) stream.uncork?.();
    }
  };
  installed.add('prefixed-send');
  return true;
}

function ignore(): void {}

/** What the piecewise send reaches on grpc-js's server call: its http2 stream. */
interface CallWithStream {
  wantTrailers?: boolean;
  stream?: { cork?: () => void; uncork?: () => void };
}

/**
 * Drops a message written after the call's status is on its way. When grpc-js itself ends
 * a call (a message over `grpc.max_receive_message_length`) it ends the HTTP/2 stream and
 * waits for the moment to send the trailers. A DoPut handler still working through the
 * messages that arrived before may write one more acknowledgement then; that write after
 * the end fails, the trailers are never sent, and the client (pyarrow, not reading its
 * acknowledgements) waited for its deadline with no status. gRPC sends no message after
 * the status anyway.
 */
export function installNoMessageAfterStatus(): boolean {
  if (installed.has('no-message-after-status')) return true;
  const proto = callPrototype();
  const original = proto?.sendMessage;
  if (!proto || typeof original !== 'function' || original.length !== 2) return false;
  proto.sendMessage = function (this: CallWithStream, message: unknown, callback?: unknown): void {
    if (this.wantTrailers === true) return; // as grpc-js does for a cancelled call
    original.call(this, message, callback);
  };
  installed.add('no-message-after-status');
  return true;
}

/** The receive state grpc-js's StreamDecoder keeps (stream-decoder.js), as our write uses it. */
interface DecoderState {
  maxReadMessageLength: number;
  readState: number;
  readCompressFlag: Buffer;
  readPartialSize: Buffer;
  readSizeRemaining: number;
  readMessageSize: number;
  readPartialMessage: Buffer[];
  readMessageRemaining: number;
  /** Ours: the buffer the message is copied into as it arrives (filled up to its length less readMessageRemaining). */
  tierflightTarget?: Buffer | undefined;
  /** Ours, for a message kept in pieces: views of the reads that carried it past the target. */
  tierflightRest?: Buffer[] | undefined;
  /** Ours: large messages of this call may be kept in pieces (set for DoPut calls only). */
  tierflightPieces?: boolean;
}

/**
 * Uncompressed messages of at least this many bytes are kept as the reads that carried
 * them (all but their first HEAD_BYTES), not copied into one buffer.
 */
export const PIECES_MIN_BYTES = 1024 * 1024;
/** Bytes of such a message (after its gRPC prefix) copied into one buffer, for its header fields. */
export const HEAD_BYTES = 64 * 1024;

const NO_DATA = 0;
const READING_SIZE = 1;
const READING_MESSAGE = 2;

/**
 * Receives large messages without copying them. grpc-js's StreamDecoder gathers a
 * message's slices and joins them into a new buffer at the end. This `write` (the same
 * states and checks) keeps an uncompressed message of PIECES_MIN_BYTES or more as it came:
 * its gRPC prefix and first HEAD_BYTES copied into a small buffer, which is what grpc-js is
 * handed, and views of the socket reads that carried the rest (registered with the
 * FlightData codec, which makes the body of those pieces; flight-data-codec.ts). Node
 * already copied each read into a buffer of its own, so nothing else holds or reuses them.
 * Only a DoPut call's decoder does that (PIECEWISE_METHOD, marked as the call's first data
 * arrives): any other deserializer would read the head alone. Any other message is copied
 * as it comes into one buffer of its size.
 *
 * Measured (bench/README, "Issue 27, fifth pass"): a warm 512 MiB put's server CPU
 * 0.58–0.72 → 0.39 s/GB. The cost: the first fill of a new process's memory faults its
 * pages in on this thread, in Node's copy of each read, where a worker thread used to
 * fault in the buffers messages were copied into.
 */
export function installPiecewiseReceive(): boolean {
  if (installed.has('piecewise-receive')) return true;
  let decoder: (new (max: number) => object) & { prototype: { write?: unknown } };
  try {
    const require = createRequire(import.meta.url);
    const mod = require('@grpc/grpc-js/build/src/stream-decoder.js') as { StreamDecoder?: typeof decoder };
    if (typeof mod.StreamDecoder !== 'function') return false;
    decoder = mod.StreamDecoder;
  } catch {
    return false;
  }
  const proto = decoder.prototype;
  if (typeof proto.write !== 'function' || (proto.write as (d: Buffer) => unknown).length !== 1) return false;
  const call = callPrototype();
  const handleDataFrame = call?.handleDataFrame;
  if (!call || typeof handleDataFrame !== 'function' || handleDataFrame.length !== 1) return false;
  // The write below keeps grpc-js's own state: a release that renamed it is left alone.
  const fresh = new decoder(1) as Record<string, unknown>;
  const state = [
    'maxReadMessageLength',
    'readState',
    'readCompressFlag',
    'readPartialSize',
    'readSizeRemaining',
    'readMessageSize',
    'readPartialMessage',
    'readMessageRemaining',
  ];
  if (!state.every((k) => k in fresh) || fresh.readState !== NO_DATA || !Buffer.isBuffer(fresh.readPartialSize)) {
    return false;
  }
  call.handleDataFrame = function (this: ReceivingCall, data: Buffer): void {
    const d = this.decoder;
    if (d && d.tierflightPieces === undefined) d.tierflightPieces = this.handler?.path === PIECEWISE_METHOD;
    handleDataFrame.call(this, data);
  };
  proto.write = function (this: DecoderState, data: Buffer): Buffer[] {
    let readHead = 0;
    const result: Buffer[] = [];
    while (readHead < data.length) {
      switch (this.readState) {
        case NO_DATA:
          this.readCompressFlag = data.subarray(readHead, readHead + 1);
          readHead += 1;
          this.readState = READING_SIZE;
          this.readPartialSize.fill(0);
          this.readSizeRemaining = 4;
          this.readMessageSize = 0;
          this.readMessageRemaining = 0;
          this.readPartialMessage = [];
          break;
        case READING_SIZE: {
          const toRead = Math.min(data.length - readHead, this.readSizeRemaining);
          data.copy(this.readPartialSize, 4 - this.readSizeRemaining, readHead, readHead + toRead);
          this.readSizeRemaining -= toRead;
          readHead += toRead;
          if (this.readSizeRemaining === 0) {
            this.readMessageSize = this.readPartialSize.readUInt32BE(0);
            if (this.maxReadMessageLength !== -1 && this.readMessageSize > this.maxReadMessageLength) {
              throw new Error(
                `Received message larger than max (${this.readMessageSize} vs ${this.maxReadMessageLength})`,
              );
            }
            this.readMessageRemaining = this.readMessageSize;
            const size = this.readMessageSize + 5;
            if (this.readMessageRemaining > 0) {
              const whole =
                this.tierflightPieces !== true ||
                this.readCompressFlag[0] !== 0 ||
                this.readMessageSize < PIECES_MIN_BYTES;
              const target = whole ? Buffer.allocUnsafe(size) : Buffer.allocUnsafeSlow(5 + HEAD_BYTES);
              this.tierflightRest = whole ? undefined : [];
              this.readCompressFlag.copy(target, 0);
              this.readPartialSize.copy(target, 1);
              this.tierflightTarget = target;
              this.readState = READING_MESSAGE;
            } else {
              result.push(Buffer.concat([this.readCompressFlag, this.readPartialSize], 5));
              this.readState = NO_DATA;
            }
          }
          break;
        }
        case READING_MESSAGE: {
          const target = this.tierflightTarget as Buffer;
          const rest = this.tierflightRest;
          const toRead = Math.min(data.length - readHead, this.readMessageRemaining);
          if (!rest) {
            data.copy(target, target.length - this.readMessageRemaining, readHead, readHead + toRead);
          } else {
            // Into the head until it is full, then views of the reads.
            const filled = 5 + this.readMessageSize - this.readMessageRemaining;
            const copied = Math.max(0, Math.min(toRead, target.length - filled));
            if (copied > 0) data.copy(target, filled, readHead, readHead + copied);
            if (copied < toRead) rest.push(data.subarray(readHead + copied, readHead + toRead));
          }
          this.readMessageRemaining -= toRead;
          readHead += toRead;
          if (this.readMessageRemaining === 0) {
            this.tierflightTarget = undefined;
            this.tierflightRest = undefined;
            this.readState = NO_DATA;
            if (rest) receivedInPieces(target, rest);
            result.push(target);
          }
          break;
        }
        default:
          throw new Error('Unexpected read state');
      }
    }
    return result;
  };
  installed.add('piecewise-receive');
  return true;
}
