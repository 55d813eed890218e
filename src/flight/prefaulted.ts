import { Worker } from 'node:worker_threads';
import { heldFromElsewhere } from '../core/garbage.js';

/**
 * Receive buffers whose pages are already in memory. A DoPut keeps what it receives, so
 * each large message lands in memory the process has not touched before: the kernel faults
 * in and zeroes every page as grpc-js copies the message in, on the main thread, which then
 * spends more time in the page-fault handler than in the copy. Here a worker thread
 * allocates buffers of the sizes DoPuts are receiving and touches their pages ahead of
 * time, on another core, and hands them over (transferred, not copied); the receive path
 * takes one of exactly the right size when there is one and allocates as before when there
 * is not. Buffers are never reused: a taken buffer belongs to the message for good.
 * Measured (five 512 MiB puts to new paths, 4 MiB batches): the main thread's system time
 * 1.9–2.0 → 0.8–1.0 s, puts after the first 1.0–1.2 → 1.3–1.7 GB/s; puts that reuse the
 * memory of replaced flights (no faults either way) unchanged.
 */

/** Messages smaller than this are allocated as grpc-js does (the faults are few). */
export const PREFAULT_MIN_BYTES = 1024 * 1024;
/** Buffers of one size kept ready. */
const AHEAD = 4;
/** Bytes kept ready over all sizes. */
const MAX_READY_BYTES = 64 * 1024 * 1024;
/** A size not asked for this long is forgotten, and its ready buffers dropped. */
const IDLE_MS = 10_000;

/**
 * The worker's loop. Buffers are allocated uninitialised: an ArrayBuffer would be zeroed
 * first, a pass over every byte of memory the worker's allocator reuses (measured: 5% of
 * the server's samples in warm replacing puts, most of the worker's CPU then); the decoder
 * fills a buffer to its last byte before anything reads it. Touching one byte a page
 * faults in what is fresh.
 */
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
parentPort.on('message', (size) => {
  const ab = Buffer.allocUnsafeSlow(size).buffer;
  const bytes = new Uint8Array(ab);
  for (let at = 0; at < size; at += 4096) bytes[at] = 0;
  parentPort.postMessage({ size, ab }, [ab]);
});
`;

interface SizeState {
  ready: ArrayBuffer[];
  /** Buffers asked of the worker and not arrived yet. */
  coming: number;
  lastAsked: number;
}

export class PrefaultedBuffers {
  private worker: Worker | undefined;
  private readonly sizes = new Map<number, SizeState>();
  private readyBytes = 0;
  private comingBytes = 0;
  private sweep: NodeJS.Timeout | undefined;
  /** Buffers taken ready (the rest were allocated on the spot). */
  hits = 0;
  /**
   * Bytes of taken buffers not collected yet. The worker's allocator counted them, not this
   * thread's, so core/garbage.ts is told of them (else it would not see them become garbage).
   */
  private outstanding = 0;
  private readonly collected = new FinalizationRegistry<number>((size) => (this.outstanding -= size));
  private unregister: (() => void) | undefined;
  private failed = false;

  /** A buffer of exactly `size` bytes with its pages in memory, or undefined. */
  take(size: number): Buffer | undefined {
    if (size < PREFAULT_MIN_BYTES || this.failed) return undefined;
    let state = this.sizes.get(size);
    if (!state) this.sizes.set(size, (state = { ready: [], coming: 0, lastAsked: 0 }));
    state.lastAsked = Date.now();
    const ab = state.ready.pop();
    if (ab) {
      this.readyBytes -= size;
      this.hits++;
      this.outstanding += size;
      this.collected.register(ab, size);
    }
    this.refill(size, state);
    return ab ? Buffer.from(ab) : undefined;
  }

  /** Bytes ready or on their way. */
  get reserved(): number {
    return this.readyBytes + this.comingBytes;
  }

  close(): void {
    this.unregister?.();
    this.unregister = undefined;
    void this.worker?.terminate();
    this.worker = undefined;
    if (this.sweep) clearInterval(this.sweep);
    this.sweep = undefined;
    this.sizes.clear();
    this.readyBytes = 0;
    this.comingBytes = 0;
  }

  private refill(size: number, state: SizeState): void {
    let want = AHEAD - state.ready.length - state.coming;
    while (want > 0 && this.readyBytes + this.comingBytes + size <= MAX_READY_BYTES) {
      want--;
      state.coming++;
      this.comingBytes += size;
      this.start().postMessage(size);
    }
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(WORKER_SOURCE, { eval: true });
    this.unregister ??= heldFromElsewhere(() => this.outstanding + this.readyBytes);
    worker.unref();
    worker.on('message', ({ size, ab }: { size: number; ab: ArrayBuffer }) => {
      this.comingBytes -= size;
      const state = this.sizes.get(size);
      if (!state) return; // forgotten meanwhile: the buffer is simply collected
      state.coming--;
      state.ready.push(ab);
      this.readyBytes += size;
    });
    // A worker that fails is not started again: messages are then received as grpc-js does.
    worker.on('error', () => {
      this.failed = true;
      this.close();
    });
    this.sweep = setInterval(() => this.forgetIdle(), IDLE_MS);
    this.sweep.unref();
    this.worker = worker;
    return worker;
  }

  private forgetIdle(): void {
    const now = Date.now();
    for (const [size, state] of this.sizes) {
      if (now - state.lastAsked < IDLE_MS) continue;
      // Buffers still coming are counted off as they arrive.
      this.readyBytes -= state.ready.length * size;
      this.sizes.delete(size);
    }
  }
}

/** The process's receive buffers: grpc-js's decoder is patched once for every server and client. */
export const receiveBuffers = new PrefaultedBuffers();
