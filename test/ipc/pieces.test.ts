import { describe, expect, it } from 'vitest';
import { Pieces, windowOf } from '../../src/ipc/pieces.js';

/** A deterministic pseudo-random generator, so a failure can be replayed. */
function random(seed: number): () => number {
  let x = seed;
  return () => {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    return x / 2 ** 31;
  };
}

/** `whole` cut at random places (empty parts included), as socket reads cut a message. */
function cut(whole: Buffer, next: () => number): Pieces {
  const parts: Buffer[] = [];
  for (let at = 0; at < whole.length;) {
    const n = Math.floor(next() ** 2 * 300);
    parts.push(whole.subarray(at, at + n));
    at += n;
  }
  return new Pieces(parts);
}

describe('Pieces: bytes held as the buffers they arrived in', () => {
  it('reads, slices, copies and joins exactly as the one buffer they cut', () => {
    const next = random(11);
    for (let round = 0; round < 50; round++) {
      const whole = Buffer.alloc(Math.floor(next() * 4000) + 16);
      for (let i = 0; i < whole.length; i++) whole[i] = Math.floor(next() * 256);
      const p = cut(whole, next);
      expect(p.length).toBe(whole.length);
      for (let k = 0; k < 40; k++) {
        const at = Math.floor(next() * (whole.length - 8));
        expect(p.readUInt8(at)).toBe(whole.readUInt8(at));
        expect(p.readUInt16LE(at)).toBe(whole.readUInt16LE(at));
        expect(p.readUInt32LE(at)).toBe(whole.readUInt32LE(at));
        expect(p.readUIntLE(at, 3)).toBe(whole.readUIntLE(at, 3));
        expect(p.readInt16BE(at)).toBe(whole.readInt16BE(at));
        expect(p.readInt32BE(at)).toBe(whole.readInt32BE(at));
        expect(p.readBigInt64LE(at)).toBe(whole.readBigInt64LE(at));
        expect(p.readBigInt64BE(at)).toBe(whole.readBigInt64BE(at));
        expect(p.readBigUInt64LE(at)).toBe(whole.readBigUInt64LE(at));
        const end = at + Math.floor(next() * (whole.length - at));
        expect(p.subarray(at, end).equals(whole.subarray(at, end))).toBe(true);
        expect(Buffer.concat(p.views(at, end)).equals(whole.subarray(at, end))).toBe(true);
        const target = Buffer.alloc(end - at + 4, 0xaa);
        expect(p.copy(target, 2, at, end)).toBe(end - at);
        expect(target.subarray(2, 2 + end - at).equals(whole.subarray(at, end))).toBe(true);
        expect(target[0]).toBe(0xaa);
        expect(target.at(-1)).toBe(0xaa);
        const w = windowOf(p, at, end);
        if (end - at >= 4) expect(w.readUInt32LE(end - at - 4)).toBe(whole.readUInt32LE(end - 4));
      }
      expect(p.join().equals(whole)).toBe(true);
      expect(p.join()).toBe(p.join()); // joined once
    }
  });

  it('gives views, not copies, of bytes inside one part', () => {
    const a = Buffer.from('abcdefgh');
    const b = Buffer.from('ijklmnop');
    const p = new Pieces([a, b]);
    expect(p.subarray(1, 5).buffer).toBe(a.buffer);
    expect(p.subarray(9, 12).toString()).toBe('jkl');
    expect(p.subarray(6, 10).toString()).toBe('ghij');
    expect(new Pieces([a]).join()).toBe(a);
  });

  it('refuses reads outside its bytes with a RangeError, as a Buffer does', () => {
    const p = new Pieces([Buffer.alloc(3), Buffer.alloc(3)]);
    expect(() => p.readUInt32LE(3)).toThrow(RangeError);
    expect(() => p.readUInt8(-1)).toThrow(RangeError);
    expect(() => p.subarray(2, 7)).toThrow(RangeError);
    const w = p.window(1, 5);
    expect(w.length).toBe(4);
    expect(() => w.readUInt32LE(1)).toThrow(RangeError);
    expect(w.readUInt32LE(0)).toBe(0);
  });
});
