import { describe, expect, it } from 'vitest';
import { HEAD_BYTES, installPiecewiseReceive, PIECES_MIN_BYTES } from '../../src/flight/grpc-internals.js';
import {
  decodeFlightData,
  isDecodeError,
  piecesReceived,
  type FlightDataFrame,
} from '../../src/flight/flight-data-codec.js';
import { bodyOf } from '../../src/ipc/frame.js';
import { runPyClient } from '../helpers/python.js';
import { startTestServer } from '../helpers/server.js';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/**
 * grpc-js's StreamDecoder, whose `write` installPiecewiseReceive replaces; `pieces` marks it
 * as the server marks a DoPut call's decoder.
 */
async function decoder(max = -1, pieces = true): Promise<{ write(data: Buffer): Buffer[] }> {
  const { StreamDecoder } = (await import('@grpc/grpc-js/build/src/stream-decoder.js')) as unknown as {
    StreamDecoder: new (max: number) => { write(data: Buffer): Buffer[]; tierflightPieces?: boolean };
  };
  const d = new StreamDecoder(max);
  d.tierflightPieces = pieces;
  return d;
}

const framed = (message: Buffer, compressed = false): Buffer => {
  const prefix = Buffer.alloc(5);
  prefix[0] = compressed ? 1 : 0;
  prefix.writeUInt32BE(message.length, 1);
  return Buffer.concat([prefix, message]);
};

const varint = (n: number): number[] => {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
};
const field = (tag: number[], bytes: Buffer): Buffer =>
  Buffer.concat([Buffer.from([...tag, ...varint(bytes.length)]), bytes]);
const HEADER = [0x12];
const META = [0x1a];
const BODY = [0xc2, 0x3e]; // field 1000, length-delimited

/** A deterministic pseudo-random generator, so a failure can be replayed. */
function random(seed: number): () => number {
  let x = seed;
  return () => {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    return x / 2 ** 31;
  };
}

interface Case {
  header: Buffer;
  body: Buffer;
  meta: Buffer;
  /** app_metadata written after the body (no Flight client does; still valid protobuf). */
  metaLast: boolean;
  compressed: boolean;
  /** A FlightDescriptor first (as a put's first message has): never sent back as received. */
  descriptor?: boolean;
}

const DESCRIPTOR = Buffer.from([0x08, 0x01, 0x1a, 0x01, 0x61]); // PATH ["a"]

function encode(c: Case): Buffer {
  const parts = c.descriptor ? [field([0x0a], DESCRIPTOR)] : [];
  parts.push(field(HEADER, c.header));
  if (!c.metaLast) parts.push(field(META, c.meta));
  parts.push(field(BODY, c.body));
  if (c.metaLast) parts.push(field(META, c.meta));
  return Buffer.concat(parts);
}

describe('receiving large messages as the reads that carried them (grpc-js decoder)', () => {
  it('gives every message whole, whatever the chunking, large bodies as views of the reads', async () => {
    expect(installPiecewiseReceive()).toBe(true);
    const next = random(27);
    const bytes = (n: number): Buffer => {
      const b = Buffer.allocUnsafe(n);
      for (let i = 0; i < n; i++) b[i] = Math.floor(next() * 256);
      return b;
    };
    for (let round = 0; round < 12; round++) {
      const cases: Case[] = [
        { header: bytes(40), body: bytes(0), meta: bytes(3), metaLast: false, compressed: false },
        { header: bytes(300), body: bytes(5000), meta: bytes(0), metaLast: false, compressed: false },
        { header: bytes(300), body: bytes(PIECES_MIN_BYTES - 400), meta: bytes(0), metaLast: false, compressed: false },
        { header: bytes(300), body: bytes(PIECES_MIN_BYTES + 3), meta: bytes(9), metaLast: false, compressed: false },
        { header: bytes(1000), body: bytes(2 * PIECES_MIN_BYTES), meta: bytes(0), metaLast: false, compressed: false },
        {
          header: bytes(500),
          body: bytes(PIECES_MIN_BYTES + 8),
          meta: bytes(0),
          metaLast: false,
          compressed: false,
          descriptor: true,
        },
        // Not kept in pieces: a header past the first HEAD_BYTES, a field after the body, a compressed message.
        {
          header: bytes(HEAD_BYTES + 10),
          body: bytes(PIECES_MIN_BYTES),
          meta: bytes(0),
          metaLast: false,
          compressed: false,
        },
        { header: bytes(200), body: bytes(PIECES_MIN_BYTES), meta: bytes(20), metaLast: true, compressed: false },
        { header: bytes(200), body: bytes(PIECES_MIN_BYTES), meta: bytes(0), metaLast: false, compressed: true },
      ].sort(() => next() - 0.5);
      const messages = cases.map(encode);
      const wire = Buffer.concat(messages.map((m, i) => framed(m, cases[i]?.compressed)));
      // Reads of 1 byte to 200 KiB, each in a buffer of its own as Node hands them over.
      const d = await decoder();
      const reads = new Set<ArrayBufferLike>();
      const out: Buffer[] = [];
      for (let at = 0; at < wire.length;) {
        const n = Math.max(1, Math.floor(next() ** 3 * 200_000));
        const read = Buffer.from(wire.subarray(at, at + n));
        reads.add(read.buffer);
        out.push(...d.write(read));
        at += n;
      }
      expect(out.length).toBe(messages.length);
      out.forEach((got, i) => {
        const c = cases[i] as Case;
        const message = messages[i] as Buffer;
        expect(got.subarray(0, 5).equals(framed(message, c.compressed).subarray(0, 5))).toBe(true);
        if (c.compressed) {
          expect(got.equals(framed(message, true))).toBe(true); // grpc-js decompresses it; never pieces
          return;
        }
        const frame = decodeFlightData(got.subarray(5));
        if (isDecodeError(frame)) throw new Error(frame.decodeError);
        expect(frame.header.equals(c.header)).toBe(true);
        expect(frame.appMetadata.equals(c.meta)).toBe(true);
        expect(bodyOf(frame).length).toBe(c.body.length);
        expect(frame.body.equals(c.body)).toBe(true);
        expect(frame.wire.equals(message)).toBe(true);
        const inPieces = message.length >= PIECES_MIN_BYTES && c.header.length < HEAD_BYTES && !c.metaLast;
        expect(frame.bodyPieces !== undefined).toBe(inPieces);
        expect(frame.descriptor?.path).toEqual(c.descriptor ? ['a'] : undefined);
        // A message with a descriptor is never sent back as it came (DoGet sends header and body only).
        if (c.descriptor) expect(frame.prefixed).toBeUndefined();
        else if (inPieces) expectPieces(frame, message, reads);
        else
          expect(
            Buffer.concat([frame.prefixed ?? Buffer.alloc(0)])
              .subarray(5)
              .equals(message),
          ).toBe(true);
      });
    }
  });

  it('gives large messages whole to any call but a DoPut (their deserializers would read the head alone)', async () => {
    expect(installPiecewiseReceive()).toBe(true);
    const message = encode({
      header: Buffer.alloc(100, 1),
      body: Buffer.alloc(3 * PIECES_MIN_BYTES, 7),
      meta: Buffer.alloc(0),
      metaLast: false,
      compressed: false,
    });
    const wire = framed(message);
    const d = await decoder(-1, false);
    const out: Buffer[] = [];
    for (let at = 0; at < wire.length; at += 65_536) out.push(...d.write(Buffer.from(wire.subarray(at, at + 65_536))));
    expect(out).toHaveLength(1);
    expect((out[0] as Buffer).equals(wire)).toBe(true);
    const frame = decodeFlightData((out[0] as Buffer).subarray(5));
    expect(isDecodeError(frame) || frame.bodyPieces).toBe(undefined);
  });

  it('refuses a message over the limit as grpc-js does', async () => {
    expect(installPiecewiseReceive()).toBe(true);
    const d = await decoder(1000);
    expect(() => d.write(framed(Buffer.alloc(1001)))).toThrow('Received message larger than max (1001 vs 1000)');
    expect((await decoder(1000)).write(framed(Buffer.alloc(1000)))[0]?.length).toBe(1005);
  });
});

/** The message is its prefixed head and the rest; the body's pieces after the head are the reads themselves. */
function expectPieces(frame: FlightDataFrame, message: Buffer, reads: Set<ArrayBufferLike>): void {
  const whole = Buffer.concat([frame.prefixed as Buffer, ...(frame.prefixedRest ?? [])]);
  expect(whole.subarray(5).equals(message)).toBe(true);
  expect((frame.prefixed as Buffer).length).toBe(5 + HEAD_BYTES);
  const pieces = frame.bodyPieces?.parts ?? [];
  expect(pieces.length).toBeGreaterThan(1);
  for (const p of pieces.slice(1)) expect(reads.has(p.buffer)).toBe(true);
}

it('pyarrow puts of 2-3 MiB batches (plain and compressed) are kept in pieces and read back whole from memory and disk, projected too', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tierflight-pieces-'));
  const before = piecesReceived.kept;
  const server = await startTestServer(`storageTypes:
  memory: { capacity: 256MiB }
  disk: { path: ${dir}/disk, capacity: 256MiB }
storageClasses:
  - { name: default, prefix: "", tiers: [{ storage: memory }] }
  - { name: disk, prefix: disk, tiers: [{ storage: disk }] }
`);
  try {
    const flights = [
      { path: 'big/1', kib: 16_000, batch_kib: 2048, seed: 1 },
      { path: 'big/2', kib: 12_000, batch_kib: 3000, seed: 2, codec: 'zstd' },
      { path: 'disk/3', kib: 16_000, batch_kib: 2048, seed: 3 },
      { path: 'disk/4', kib: 12_000, batch_kib: 3000, seed: 4, codec: 'lz4' },
    ];
    const script = [
      ...flights.map((f) => ({ op: 'put', ...f })),
      ...flights.map((f) => ({ op: 'check', ...f })),
      ...flights.map((f) => ({ op: 'check-columns', columns: ['v'], ...f })),
      // A large message to another method arrives whole (its deserializer is not ours).
      { op: 'stats', pad: 3 << 20 },
    ];
    const out = await runPyClient<Record<string, unknown>[]>('ops', server.location, [
      '--script',
      JSON.stringify(script),
    ]);
    expect(out.at(-1)).toEqual(expect.objectContaining({ reservations: expect.anything() }));
    expect(out.slice(flights.length, -1)).toEqual(
      [...flights, ...flights].map(() => expect.objectContaining({ ok: true })),
    );
    expect(server.app.flight.internals.piecewiseReceive).toBe(true);
    expect(server.app.flight.internals.zeroCopySend).toBe(true);
    // Every batch of every put was kept in pieces (2 MiB and more), none joined.
    expect(piecesReceived.kept - before).toBeGreaterThanOrEqual(8 + 4 + 8 + 4);
  } finally {
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
