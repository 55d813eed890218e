import { createRequire } from 'node:module';
import { PrefixedFlightData } from './flight-data-codec.js';

/**
 * Two narrow wraps of grpc-js's server call (`BaseServerInterceptingCall`), a class
 * grpc-js does not export as API. Each checks the method's shape first: if a grpc-js
 * release renames or changes it, that wrap is skipped (its installer returns false, the
 * server logs a warning) and grpc-js behaves as it does unpatched. A test asserts that
 * both are installed with the pinned grpc-js.
 */
interface CallPrototype {
  serializeMessage?: (this: unknown, value: unknown) => Buffer;
  sendMessage?: (this: { wantTrailers?: boolean }, message: unknown, callback?: unknown) => void;
}

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
  if (!proto || typeof original !== 'function' || original.length !== 1) return false;
  proto.serializeMessage = function (this: unknown, value: unknown): Buffer {
    return value instanceof PrefixedFlightData ? value.bytes : original.call(this, value);
  };
  installed.add('prefixed-send');
  return true;
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
  proto.sendMessage = function (this: { wantTrailers?: boolean }, message: unknown, callback?: unknown): void {
    if (this.wantTrailers === true) return; // as grpc-js does for a cancelled call
    original.call(this, message, callback);
  };
  installed.add('no-message-after-status');
  return true;
}
