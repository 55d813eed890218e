import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ServiceDefinition } from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { decodeFlightData, decodePutResult, encodeFlightData, encodePutResult } from './flight-data-codec.js';

/**
 * The Flight service definition: control messages through proto-loader, FlightData and
 * PutResult through our own codec (see flight-data-codec.ts).
 */
const PROTO_FILE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../proto/flight.proto');

export const SERVICE_NAME = 'arrow.flight.protocol.FlightService';

export function loadFlightService(): ServiceDefinition {
  const pkg = protoLoader.loadSync(PROTO_FILE, {
    keepCase: true,
    longs: Number,
    bytes: Buffer,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  const service = pkg[SERVICE_NAME] as unknown as ServiceDefinition;
  const withCodec = { ...service } as Record<string, ServiceDefinition[string]>;
  const flightDataCodec = {
    requestSerialize: encodeFlightData,
    requestDeserialize: decodeFlightData,
  };
  for (const name of ['DoGet', 'DoPut', 'DoExchange'] as const) {
    const method = service[name];
    if (!method) throw new Error(`${PROTO_FILE} lacks ${name}`);
    withCodec[name] = {
      ...method,
      ...(name !== 'DoGet' ? flightDataCodec : {}),
      responseSerialize: name === 'DoPut' ? encodePutResult : encodeFlightData,
      responseDeserialize: name === 'DoPut' ? decodePutResult : decodeFlightData,
    } as ServiceDefinition[string];
  }
  return withCodec as ServiceDefinition;
}

// Shapes of the control messages as proto-loader presents them (keepCase, Buffers, Numbers).
export interface PbDescriptor {
  type: 'UNKNOWN' | 'PATH' | 'CMD' | number;
  cmd: Buffer;
  path: string[];
}
export interface PbTimestamp {
  seconds: number;
  nanos: number;
}
export interface PbFlightEndpoint {
  ticket: { ticket: Buffer };
  location: { uri: string }[];
  expiration_time?: PbTimestamp | null;
  app_metadata?: Buffer;
}
export interface PbFlightInfo {
  schema: Buffer;
  flight_descriptor: PbDescriptor;
  endpoint: PbFlightEndpoint[];
  total_records: number;
  total_bytes: number;
  ordered: boolean;
  app_metadata?: Buffer;
}
export interface PbPollInfo {
  info?: PbFlightInfo;
  flight_descriptor?: PbDescriptor;
  progress?: number;
  expiration_time?: PbTimestamp | null;
}
export interface PbAction {
  type: string;
  body: Buffer;
}
export interface PbHandshake {
  protocol_version: number;
  payload: Buffer;
}
