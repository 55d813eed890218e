import { describe, expect, it } from 'vitest';
import { installPrefaultedReceive } from '../../src/flight/grpc-internals.js';
import { PREFAULT_MIN_BYTES, PrefaultedBuffers, receiveBuffers } from '../../src/flight/prefaulted.js';
import { runPyClient } from '../helpers/python.js';
import { MEMORY_ONLY, startTestServer } from '../helpers/server.js';
import { until } from '../helpers/until.js';

/** grpc-js's StreamDecoder, whose `write` installPrefaultedReceive replaces. */
async function decoder(max = -1): Promise<{ write(data: Buffer): Buffer[] }> {
  const { StreamDecoder } = (await import('@grpc/grpc-js/build/src/stream-decoder.js')) as unknown as {
    StreamDecoder: new (max: number) => { write(data: Buffer): Buffer[] };
  };
  return new StreamDecoder(max);
}

const framed = (message: Buffer): Buffer => {
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(message.length, 1);
  return Buffer.concat([prefix, message]);
};

/** A deterministic pseudo-random generator, so a failure can be replayed. */
function random(seed: number): () => number {
  let x = seed;
  return () => {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    return x / 2 ** 31;
  };
}

describe('receiving large messages into prefaulted buffers (grpc-js decoder)', () => {
  const taken: number[] = [];
  const take = (size: number): Buffer | undefined => {
    taken.push(size);
    return size >= PREFAULT_MIN_BYTES ? Buffer.alloc(size, 0xee) : undefined;
  };

  it('gives the messages grpc-js would, whatever the chunking, with large ones in the buffers taken', async () => {
    expect(installPrefaultedReceive(take)).toBe(true);
    const next = random(27);
    for (let round = 0; round < 20; round++) {
      const sizes = [0, 1, 17, 5000, PREFAULT_MIN_BYTES - 6, PREFAULT_MIN_BYTES + 3, 2 * PREFAULT_MIN_BYTES].sort(
        () => next() - 0.5,
      );
      const messages = sizes.map((n, i) => Buffer.alloc(n, (i * 37 + round) & 255));
      for (const m of messages) for (let i = 0; i < m.length; i += 997) m[i] = Math.floor(next() * 256);
      const wire = Buffer.concat(messages.map(framed));
      // Chunks from 1 byte to 200 KiB, as HTTP/2 DATA frames and socket reads cut them.
      const d = await decoder();
      const out: Buffer[] = [];
      taken.length = 0;
      for (let at = 0; at < wire.length;) {
        const n = Math.max(1, Math.floor(next() ** 3 * 200_000));
        out.push(...d.write(wire.subarray(at, at + n)));
        at += n;
      }
      expect(out.length).toBe(messages.length);
      out.forEach((got, i) => expect(got.equals(framed(messages[i] as Buffer))).toBe(true));
      // Every non-empty message asked for a buffer of its framed size; large ones got theirs.
      expect(taken.sort((a, b) => a - b)).toEqual(
        sizes
          .filter((n) => n > 0)
          .map((n) => n + 5)
          .sort((a, b) => a - b),
      );
      for (const got of out) if (got.length >= PREFAULT_MIN_BYTES) expect(got.buffer.byteLength).toBe(got.length);
    }
  });

  it('refuses a message over the limit as grpc-js does', async () => {
    expect(installPrefaultedReceive(take)).toBe(true);
    const d = await decoder(1000);
    expect(() => d.write(framed(Buffer.alloc(1001)))).toThrow('Received message larger than max (1001 vs 1000)');
    expect((await decoder(1000)).write(framed(Buffer.alloc(1000)))[0]?.length).toBe(1005);
  });
});

describe('PrefaultedBuffers', () => {
  it('has buffers of a size asked for ready after the first ask, of exactly that size', async () => {
    const buffers = new PrefaultedBuffers();
    try {
      const size = 2 * PREFAULT_MIN_BYTES + 5;
      expect(buffers.take(size)).toBeUndefined(); // the first ask of a size allocates on the spot
      expect(buffers.take(1000)).toBeUndefined(); // small ones are never prepared
      let b: Buffer | undefined;
      await until('a buffer of that size to be ready', () => (b = buffers.take(size)) !== undefined);
      expect(b!.length).toBe(size);
      expect(b!.buffer.byteLength).toBe(size);
      expect(buffers.hits).toBe(1);
      // Never more than the cap is kept ready.
      for (let i = 0; i < 100; i++) buffers.take(size);
      expect(buffers.reserved).toBeLessThanOrEqual(64 * 1024 * 1024);
    } finally {
      buffers.close();
    }
  });
});

it('pyarrow puts of 2 MiB batches land in prefaulted buffers and read back whole', async () => {
  const server = await startTestServer(MEMORY_ONLY('256MiB'));
  try {
    const hits = receiveBuffers.hits;
    const flights = [1, 2, 3, 4].map((i) => ({ path: `big/${i}`, kib: 16_000, batch_kib: 2048, seed: i }));
    const script = [...flights.map((f) => ({ op: 'put', ...f })), ...flights.map((f) => ({ op: 'check', ...f }))];
    const out = await runPyClient<Record<string, unknown>[]>('ops', server.location, [
      '--script',
      JSON.stringify(script),
    ]);
    expect(out.slice(flights.length)).toEqual(flights.map(() => expect.objectContaining({ ok: true })));
    expect(receiveBuffers.hits).toBeGreaterThan(hits);
    expect(server.app.flight.internals.prefaultedReceive).toBe(true);
  } finally {
    await server.stop();
  }
});
