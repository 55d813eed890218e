import type { ServerWritableStream } from '@grpc/grpc-js';
import { InvalidArgumentError, UnimplementedError } from '../../errors.js';
import { encapsulateSchema } from '../../ipc/message-header.js';
import type { FlightVersion } from '../../storage/flight.js';
import { EMPTY, streamOut, unary, type RpcContext } from '../call.js';
import { DescriptorType } from '../flight-data-codec.js';
import type { PbDescriptor, PbFlightInfo } from '../proto.js';
import { encodeTicket } from '../ticket.js';

/** The metadata calls: ListFlights, GetFlightInfo, GetSchema (and PollFlightInfo, refused). */
export function infoHandlers(ctx: RpcContext) {
  const { manager } = ctx;
  const endpoints = (version: FlightVersion): PbFlightInfo['endpoint'] => {
    const ranges = version.endpointRanges(ctx.maxEndpointBytes);
    return ranges.map((range) => ({
      ticket: {
        ticket: encodeTicket({ path: version.path, version: version.tag, ...(ranges.length > 1 ? { range } : {}) }),
      },
      location: ctx.advertise ? [{ uri: ctx.advertise }] : [],
      expiration_time: toTimestamp(version.expiresAt),
      app_metadata: EMPTY,
    }));
  };

  const flightInfo = (version: FlightVersion): PbFlightInfo => ({
    schema: encapsulateSchema(version.schemaHeader),
    flight_descriptor: { type: 'PATH', cmd: EMPTY, path: version.path.split('/') },
    endpoint: endpoints(version),
    total_records: version.totalRecords,
    total_bytes: version.totalBytes,
    ordered: true,
    app_metadata: EMPTY,
  });

  return {
    ListFlights: (call: ServerWritableStream<{ expression: Buffer }, PbFlightInfo>): void => {
      void streamOut(ctx, call, 'ListFlights', async (write) => {
        const prefix = call.request.expression.toString('utf8');
        for (const version of manager.list(prefix)) await write(flightInfo(version));
      });
    },

    GetFlightInfo: unary(ctx, 'GetFlightInfo', (descriptor: PbDescriptor) =>
      flightInfo(manager.lookup(pathOf(descriptor))),
    ),

    GetSchema: unary(ctx, 'GetSchema', (descriptor: PbDescriptor) => ({
      schema: encapsulateSchema(manager.lookup(pathOf(descriptor)).schemaHeader),
    })),

    PollFlightInfo: unary(ctx, 'PollFlightInfo', () => {
      throw new UnimplementedError(
        'PollFlightInfo is not supported by Tierflight: flights are complete when visible; use GetFlightInfo',
      );
    }),
  };
}

function pathOf(descriptor: PbDescriptor): string[] {
  if (descriptor.type !== 'PATH' && descriptor.type !== DescriptorType.PATH) {
    throw new InvalidArgumentError(`Tierflight addresses flights by PATH descriptors; got ${descriptor.type}`);
  }
  return descriptor.path;
}

function toTimestamp(ms: number | undefined): { seconds: number; nanos: number } | null {
  if (ms === undefined) return null;
  return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1_000_000 };
}
