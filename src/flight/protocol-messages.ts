import path from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { InvalidArgumentError } from '../errors.js';
import type { PbFlightEndpoint, PbFlightInfo } from './proto.js';

/**
 * Protobuf bodies of the Flight protocol's standard actions (RenewFlightEndpoint,
 * CancelFlightInfo), which travel inside `Action.body` and `Result.body` rather than as RPC
 * messages, so grpc-js never (de)serialises them: protobufjs does, from `proto/flight.proto`.
 */
const PROTO_FILE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../proto/flight.proto');
const root = new protobuf.Root().loadSync(PROTO_FILE, { keepCase: true });
const type = (name: string): protobuf.Type => root.lookupType(`arrow.flight.protocol.${name}`);

const RENEW_REQUEST = type('RenewFlightEndpointRequest');
const CANCEL_REQUEST = type('CancelFlightInfoRequest');
const CANCEL_RESULT = type('CancelFlightInfoResult');
const ENDPOINT = type('FlightEndpoint');

/** CancelStatus values (the protocol's). */
export const CancelStatus = {
  UNSPECIFIED: 0,
  CANCELLED: 1,
  CANCELLING: 2,
  NOT_CANCELLABLE: 3,
} as const;
export type CancelStatusValue = (typeof CancelStatus)[keyof typeof CancelStatus];

const TO_OBJECT: protobuf.IConversionOptions = { longs: Number, defaults: true, arrays: true };

function decode<T>(t: protobuf.Type, body: Buffer, what: string): T {
  try {
    return t.toObject(t.decode(body), TO_OBJECT) as T;
  } catch (err) {
    throw new InvalidArgumentError(`${what}: the body is not a ${t.name} message (${(err as Error).message})`);
  }
}

function encode(t: protobuf.Type, value: object): Buffer {
  const bytes = t.encode(t.fromObject(value)).finish();
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export function decodeRenewRequest(body: Buffer): { endpoint: PbFlightEndpoint } {
  const request = decode<{ endpoint?: PbFlightEndpoint | null }>(RENEW_REQUEST, body, 'RenewFlightEndpoint');
  if (!request.endpoint?.ticket)
    throw new InvalidArgumentError('RenewFlightEndpoint: the request names no endpoint ticket');
  return { endpoint: request.endpoint };
}

export function encodeEndpoint(endpoint: PbFlightEndpoint): Buffer {
  return encode(ENDPOINT, endpoint);
}

export function decodeCancelRequest(body: Buffer): { info: PbFlightInfo } {
  const request = decode<{ info?: PbFlightInfo | null }>(CANCEL_REQUEST, body, 'CancelFlightInfo');
  if (!request.info?.flight_descriptor) {
    throw new InvalidArgumentError('CancelFlightInfo: the request names no FlightInfo with a flight_descriptor');
  }
  return { info: request.info };
}

export function encodeCancelResult(status: CancelStatusValue): Buffer {
  return encode(CANCEL_RESULT, { status });
}

export function decodeCancelResult(body: Buffer): CancelStatusValue {
  return decode<{ status: number }>(CANCEL_RESULT, body, 'CancelFlightInfoResult').status as CancelStatusValue;
}

export function decodeEndpoint(body: Buffer): PbFlightEndpoint {
  return decode<PbFlightEndpoint>(ENDPOINT, body, 'FlightEndpoint');
}
