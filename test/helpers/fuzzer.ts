/**
 * A seeded mutator for fuzz tests: mulberry32 for reproducible randomness, and the
 * mutations of Arrow IPC messages, tickets, paths and action bodies that the fuzz and
 * differential tests send.
 */
export type Message = { header: Buffer<ArrayBufferLike>; body: Buffer<ArrayBufferLike> };

export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** How many kinds of header mutation `mutateHeader` has. */
const HEADER_MUTATIONS = 5;

export class Fuzzer {
  private readonly next: () => number;
  constructor(seed: number) {
    this.next = mulberry32(seed);
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)] as T;
  }
  bytes(n: number): Buffer {
    return Buffer.from(Array.from({ length: n }, () => this.int(256)));
  }

  private interestingU32(len: number): number {
    return this.pick([0, 1, 2, 4, 7, 8, 0x7fffffff, 0xffffffff, 0x80000000, len, len - 4, len + 4, this.int(2 ** 32)]);
  }

  /**
   * One mutation of a header, changed in place (a cut returns a shorter view): `roll`
   * below HEADER_MUTATIONS picks which, or a random one.
   */
  mutateHeader(h: Buffer, roll = this.int(HEADER_MUTATIONS)): { header: Buffer; what: string } {
    switch (roll) {
      case 0: {
        const bits = 1 + this.int(3);
        for (let k = 0; k < bits; k++) {
          const at = this.int(h.length);
          h[at] = (h[at] as number) ^ (1 << this.int(8));
        }
        return { header: h, what: `flip ${bits} bits` };
      }
      case 1: {
        const at = this.int(h.length);
        h[at] = this.pick([0, 1, 0x7f, 0x80, 0xff, this.int(256)]);
        return { header: h, what: `set byte ${at}` };
      }
      case 2: {
        if (h.length < 4) return { header: h, what: 'no-op' };
        const at = this.int(h.length >> 2) * 4;
        h.writeUInt32LE(this.interestingU32(h.length), at);
        return { header: h, what: `set word ${at}` };
      }
      case 3: {
        if (h.length < 8) return { header: h, what: 'no-op' };
        const at = this.int(h.length >> 3) * 8;
        const v = this.pick([0n, 1n, -1n, 8n, 2n ** 62n, -(2n ** 63n), BigInt(this.int(4096))]);
        h.writeBigInt64LE(v, at);
        return { header: h, what: `set long ${at}` };
      }
      default: {
        const keep = this.int(h.length);
        return { header: h.subarray(0, keep), what: `cut to ${keep}` };
      }
    }
  }

  /** One mutation of a copy of a stream's messages. */
  mutate(messages: Message[], compressed: boolean): { messages: Message[]; what: string } {
    const ms: Message[] = messages.map((m) => ({ header: Buffer.from(m.header), body: Buffer.from(m.body) }));
    const i = this.int(ms.length);
    const m = ms[i] as Message;
    const h = m.header;
    // A compressed body's buffers are checked as well-formed frames, but whether their
    // decompressed sizes agree with the header is seen only by decompressing, which the
    // server does not do (see the IPC validator): compressed seeds get message-level
    // mutations only.
    const roll = compressed ? 7 + this.int(3) : this.int(10);
    if (roll < HEADER_MUTATIONS) {
      const changed = this.mutateHeader(h, roll);
      ms[i] = { header: changed.header, body: m.body };
      return { messages: ms, what: `${changed.what} of header ${i}` };
    }
    switch (roll) {
      case 5: {
        if (this.chance(0.5) && m.body.length > 0) {
          const keep = this.int(m.body.length);
          ms[i] = { header: h, body: m.body.subarray(0, keep) };
          return { messages: ms, what: `cut body ${i} to ${keep}` };
        }
        ms[i] = { header: h, body: Buffer.concat([m.body, Buffer.alloc(8)]) };
        return { messages: ms, what: `grow body ${i}` };
      }
      case 6: {
        if (m.body.length === 0) return { messages: ms, what: 'no-op' };
        const flips = 1 + this.int(4);
        for (let k = 0; k < flips; k++) {
          const at = this.int(m.body.length);
          m.body[at] = this.int(256);
        }
        return { messages: ms, what: `change ${flips} body bytes of ${i}` };
      }
      case 7:
        if (ms.length > 1) ms.splice(i === 0 ? 1 : i, 1);
        return { messages: ms, what: `drop message ${i || 1}` };
      case 8:
        ms.splice(i, 0, { header: Buffer.from(h), body: Buffer.from(m.body) });
        return { messages: ms, what: `repeat message ${i}` };
      default: {
        const j = this.int(ms.length);
        [ms[i], ms[j]] = [ms[j] as Message, ms[i] as Message];
        return { messages: ms, what: `swap messages ${i} and ${j}` };
      }
    }
  }

  junkPath(): string[] {
    // Never a prefix of the accepted flights (fz/...): actions use these paths too.
    const segments = ['', '.', '..', '/', 'junk', 'a/b', 'x\u0000y', 'tab\t', 'é', 'x'.repeat(1100), 'fzz', '//'];
    return Array.from({ length: 1 + this.int(3) }, () => this.pick(segments));
  }

  ticket(accepted: readonly string[]): Buffer {
    const path = accepted.length > 0 && this.chance(0.5) ? this.pick(accepted) : this.junkPath().join('/');
    const num = (): unknown => this.pick([0, 1, -1, 2 ** 53, 1.5, '1', null, 1e308, 3]);
    switch (this.int(4)) {
      case 0:
        return this.bytes(this.int(64));
      case 1:
        return Buffer.from(JSON.stringify({ path, from: num(), to: num() }));
      case 2:
        return Buffer.from(JSON.stringify({ path, v: this.pick([1, 'x', null, -5, '']), from: 0, to: num() }));
      default:
        return Buffer.from(this.chance(0.5) ? path : `{"path": ${JSON.stringify(path)}`);
    }
  }

  action(): { type: string; body: Buffer } {
    const type = this.pick(['delete', 'delete-prefix', 'stats', 'nope', '', 'DELETE']);
    // Under junk/, so no action deletes the accepted flights (fz/...); an empty prefix
    // would, but it is refused without {"all": true}, which this never sends.
    const value = this.pick<unknown>([`junk/${this.junkPath().join('/')}`, 5, null, ['junk'], { a: 1 }, '', '/']);
    const body = this.pick([
      this.bytes(this.int(40)),
      Buffer.from(JSON.stringify({ path: value, prefix: value })),
      Buffer.from('{"path":'),
      Buffer.alloc(0),
    ]);
    return { type, body };
  }
}
