/**
 * The byte layout of a FlightData protobuf message behind its 5-byte gRPC prefix, written
 * by hand so a stored Arrow message can be read from disk straight into the buffer that is
 * sent: tags and lengths first, room left for the header and body (see
 * flight/flight-data-codec.ts for decoding, and flight/grpc-internals.ts for sending).
 *
 * Field numbers (Flight.proto): data_header = 2, app_metadata = 3, data_body = 1000.
 */

/** Bytes of the gRPC message prefix: a compressed flag (0) and the message length (uint32 BE). */
export const GRPC_PREFIX_BYTES = 5;

const EMPTY: Buffer = Buffer.alloc(0);

function writePrefix(out: Buffer, messageLength: number): void {
  out[0] = 0;
  out.writeUInt32BE(messageLength, 1);
}

const TAG_HEADER = 0x12;
const TAG_METADATA = 0x1a;
const TAG_BODY = [0xc2, 0x3e] as const; // field 1000, wire type 2

export function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

export function writeVarint(out: Buffer, pos: number, n: number): number {
  while (n >= 0x80) {
    out[pos++] = (n % 128) | 0x80;
    n = Math.floor(n / 128);
  }
  out[pos++] = n;
  return pos;
}

/**
 * A FlightData buffer, behind its gRPC prefix, with its tags, lengths and app_metadata
 * written and room left for the header and body, so a disk tier reads both straight into
 * place: the bytes read are the bytes sent, with no further copy.
 */
export function allocateFlightData(
  headerLength: number,
  appMetadata: Buffer,
  bodyLength: number,
  allocate: (size: number) => Buffer = Buffer.allocUnsafe,
): { prefixed: Buffer; wire: Buffer; header: Buffer; body: Buffer } {
  const meta = appMetadata.length;
  const size =
    (headerLength > 0 ? 1 + varintSize(headerLength) + headerLength : 0) +
    (meta > 0 ? 1 + varintSize(meta) + meta : 0) +
    (bodyLength > 0 ? 2 + varintSize(bodyLength) + bodyLength : 0);
  const prefixed = allocate(GRPC_PREFIX_BYTES + size);
  writePrefix(prefixed, size);
  const wire = prefixed.subarray(GRPC_PREFIX_BYTES);
  let pos = 0;
  let header = EMPTY;
  let body = EMPTY;
  if (headerLength > 0) {
    wire[pos++] = TAG_HEADER;
    pos = writeVarint(wire, pos, headerLength);
    header = wire.subarray(pos, pos + headerLength);
    pos += headerLength;
  }
  if (meta > 0) {
    wire[pos++] = TAG_METADATA;
    pos = writeVarint(wire, pos, meta);
    pos += appMetadata.copy(wire, pos);
  }
  if (bodyLength > 0) {
    wire[pos++] = TAG_BODY[0];
    wire[pos++] = TAG_BODY[1];
    pos = writeVarint(wire, pos, bodyLength);
    body = wire.subarray(pos, pos + bodyLength);
  }
  return { prefixed, wire, header, body };
}
