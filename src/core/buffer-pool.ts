import { systemClock, type Clock } from './clock.js';
import { Timers } from './timers.js';

/**
 * Reuses the large buffers disk reads fill for DoGet. A fresh multi-MiB allocation per
 * batch is costly twice over: the kernel faults in and zeroes new pages, and V8 answers
 * the external memory with a major GC every few dozen MiB.
 *
 * `acquire` lends a buffer; `release` takes back only what it lent (anything else, such
 * as a memory tier's stored bytes, is ignored), once. A buffer never given back is simply
 * collected. Buffers are kept in size classes at most 1/8 above the size asked for; at
 * most `maxIdleBytes` wait for reuse, and they are dropped after `idleMs` without use.
 */
export class BufferPool {
  private readonly free = new Map<number, ArrayBuffer[]>();
  private readonly lent = new WeakSet<ArrayBuffer>();
  private idleBytes = 0;
  private lastAcquire = 0;
  /** Cancels the pending trim, if one is scheduled. */
  private trimTimer: (() => void) | undefined;
  private readonly timers: Timers;

  constructor(
    readonly maxIdleBytes: number,
    readonly minSize = 64 * 1024,
    readonly idleMs = 10_000,
    private readonly clock: Clock = systemClock,
  ) {
    this.timers = new Timers(clock);
  }

  /** A buffer of exactly `size` bytes, with unspecified contents. */
  acquire(size: number): Buffer {
    if (size < this.minSize) return Buffer.allocUnsafe(size);
    this.lastAcquire = this.clock.now();
    const capacity = sizeClass(size);
    let ab = this.free.get(capacity)?.pop();
    if (ab) this.idleBytes -= capacity;
    else ab = Buffer.allocUnsafeSlow(capacity).buffer as ArrayBuffer;
    this.lent.add(ab);
    return Buffer.from(ab, 0, size);
  }

  /** Gives back a buffer `acquire` lent, for reuse; the caller must not touch it again. */
  release(buf: Buffer): void {
    const ab = buf.buffer as ArrayBuffer;
    if (!this.lent.delete(ab)) return;
    if (this.idleBytes + ab.byteLength > this.maxIdleBytes) return;
    let list = this.free.get(ab.byteLength);
    if (!list) this.free.set(ab.byteLength, (list = []));
    list.push(ab);
    this.idleBytes += ab.byteLength;
    this.trimTimer ??= this.timers.after(this.idleMs, () => this.trim());
  }

  /** Bytes waiting for reuse. */
  get idle(): number {
    return this.idleBytes;
  }

  private trim(): void {
    this.trimTimer = undefined;
    if (this.idleBytes === 0) return;
    const quiet = this.clock.now() - this.lastAcquire;
    if (quiet >= this.idleMs) {
      this.free.clear();
      this.idleBytes = 0;
    } else {
      this.trimTimer = this.timers.after(this.idleMs - quiet, () => this.trim());
    }
  }
}

/** `size` rounded up to a step of 1/16 of the power of two above it (at most 1/8 wasted). */
export function sizeClass(size: number): number {
  const pow = 2 ** Math.ceil(Math.log2(size));
  const step = Math.max(4096, pow / 16);
  return Math.ceil(size / step) * step;
}
