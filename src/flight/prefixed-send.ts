import { createRequire } from 'node:module';
import { PrefixedFlightData } from './flight-data-codec.js';

/**
 * grpc-js frames every outgoing message by allocating a new buffer of 5 + N bytes and
 * copying the serialized message into it (`BaseServerInterceptingCall.serializeMessage`).
 * For DoGet that is a fresh multi-MiB allocation per batch, and V8 answers that much
 * external memory with a major GC every few dozen MiB: measured here, a third of the
 * server's CPU during a DoGet went to marking and sweeping, a tenth to the copy.
 *
 * Stored messages already sit behind their gRPC prefix (the receive buffer grpc-js built,
 * or the buffer a disk tier reads into), so for a `PrefixedFlightData` we have grpc-js
 * send those bytes as they are. Every other message takes grpc-js's own path. This wraps
 * a method grpc-js does not export as API: if a grpc-js release renames it, the wrap is
 * skipped (returning false) and messages are framed the ordinary way, only slower.
 */
type SerializeMessage = (this: unknown, value: unknown) => Buffer;

let installed = false;

export function installPrefixedSend(): boolean {
  if (installed) return true;
  let proto: { serializeMessage?: SerializeMessage } | undefined;
  try {
    const require = createRequire(import.meta.url);
    const mod = require('@grpc/grpc-js/build/src/server-interceptors.js') as {
      BaseServerInterceptingCall?: { prototype: { serializeMessage?: SerializeMessage } };
    };
    proto = mod.BaseServerInterceptingCall?.prototype;
  } catch {
    return false;
  }
  const original = proto?.serializeMessage;
  if (!proto || typeof original !== 'function' || original.length !== 1) return false;
  proto.serializeMessage = function (this: unknown, value: unknown): Buffer {
    return value instanceof PrefixedFlightData ? value.bytes : original.call(this, value);
  };
  installed = true;
  return true;
}
