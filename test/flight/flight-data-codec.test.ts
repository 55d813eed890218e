import { describe, expect, it } from 'vitest';
import {
  decodeFlightData,
  decodePutResult,
  encodeFlightData,
  encodePutResult,
  isDecodeError,
  PrefixedFlightData,
  type FlightDataFrame,
} from '../../src/flight/flight-data-codec.js';
import { allocateFlightData } from '../../src/ipc/flight-data-layout.js';
import { flightData } from '../helpers/raw-client.js';

const frame = (wire: Buffer): FlightDataFrame => {
  const decoded = decodeFlightData(wire);
  if (isDecodeError(decoded)) throw new Error(decoded.decodeError);
  return decoded;
};

describe('FlightData codec', () => {
  const header = Buffer.from('header-bytes');
  const body = Buffer.alloc(300, 7);
  const meta = Buffer.from('meta');

  it('decodes what protobufjs encodes, slicing rather than copying', () => {
    const wire = flightData({ descriptor: { type: 'PATH', path: ['a', 'b/c'] }, header, body, appMetadata: meta });
    const f = frame(wire);
    expect(f.descriptor).toEqual({ type: 1, cmd: Buffer.alloc(0), path: ['a', 'b/c'] });
    expect(f.header).toEqual(header);
    expect(f.body).toEqual(body);
    expect(f.appMetadata).toEqual(meta);
    expect(f.body.buffer).toBe(wire.buffer); // a view of the received buffer
    expect(f.replayable).toBe(false); // it carries a descriptor
  });

  it('encodes bytes that protobufjs-encoded messages decode back from, and replays as-is', () => {
    const ours = encodeFlightData({ header, body, appMetadata: meta });
    expect(ours).toEqual(flightData({ header, body, appMetadata: meta }));
    const f = frame(ours);
    expect(f.replayable).toBe(true);
    expect(encodeFlightData(f.wire)).toBe(f.wire);
  });

  it('handles multi-byte lengths and empty fields', () => {
    const big = Buffer.alloc(70_000, 1);
    const f = frame(encodeFlightData({ header, body: big }));
    expect(f.body.length).toBe(70_000);
    expect(f.appMetadata.length).toBe(0);
    expect(frame(Buffer.alloc(0)).header.length).toBe(0);
  });

  it('skips unknown fields but marks the message not replayable', () => {
    const unknown = Buffer.from([0x20, 0x05]); // field 4, varint 5
    const f = frame(Buffer.concat([unknown, encodeFlightData({ header, body })]));
    expect(f.header).toEqual(header);
    expect(f.replayable).toBe(false);
  });

  it.each([
    ['truncated length', Buffer.from([0x12, 0x05, 0x01])],
    ['truncated varint', Buffer.from([0x12, 0xff])],
    ['group wire type', Buffer.from([0x0b])],
    ['overlong varint', Buffer.from([0x12, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01])],
    [
      'invalid UTF-8 path',
      flightData({ descriptor: { type: 'PATH', path: ['x'] } }).map((b) => (b === 0x78 ? 0xff : b)),
    ],
  ])('reports %s as a decode error instead of throwing', (_name, wire) => {
    const decoded = decodeFlightData(Buffer.from(wire));
    expect(isDecodeError(decoded)).toBe(true);
  });

  /** A message laid out the way grpc-js hands it to the deserializer: after its 5-byte prefix. */
  const received = (wire: Buffer, prefix = [0, ...u32(wire.length)]): Buffer =>
    Buffer.concat([Buffer.from(prefix), wire]).subarray(5);
  const u32 = (n: number): number[] => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];

  it('keeps the gRPC prefix a replayable message was received behind, and only a true one', () => {
    const wire = encodeFlightData({ header, body, appMetadata: meta });
    const f = frame(received(wire));
    expect(f.prefixed).toEqual(Buffer.from([0, ...u32(wire.length), ...wire]));
    expect(f.prefixed?.buffer).toBe(f.wire.buffer); // a view, not a copy
    expect(frame(received(wire, [1, ...u32(wire.length)])).prefixed).toBeUndefined(); // compressed flag
    expect(frame(received(wire, [0, ...u32(wire.length + 1)])).prefixed).toBeUndefined(); // other length
    const alone = Buffer.alloc(wire.length); // its own allocation: nothing before it
    wire.copy(alone);
    expect(frame(alone).prefixed).toBeUndefined();
    const withDescriptor = flightData({ descriptor: { type: 'PATH', path: ['a'] }, header, body });
    expect(frame(received(withDescriptor)).prefixed).toBeUndefined(); // not replayable
  });

  it('allocates FlightData behind a correct gRPC prefix for disk reads', () => {
    const out = allocateFlightData(header.length, meta, body.length);
    header.copy(out.header);
    body.copy(out.body);
    expect(out.wire).toEqual(encodeFlightData({ header, body, appMetadata: meta }));
    expect(out.prefixed.subarray(0, 5)).toEqual(Buffer.from([0, ...u32(out.wire.length)]));
    expect(out.prefixed.subarray(5)).toEqual(out.wire);
    expect(encodeFlightData(new PrefixedFlightData(out.prefixed))).toEqual(out.wire);
  });

  it('frames PutResult', () => {
    expect(decodePutResult(encodePutResult(meta))).toEqual(meta);
    expect(decodePutResult(encodePutResult(Buffer.alloc(0)))).toEqual(Buffer.alloc(0));
  });
});
