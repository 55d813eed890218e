import { UnavailableError } from '../errors.js';
import { FlightObjectEncoder, type FlightMeta, type FlightObject } from './flight-object.js';
import type { DurableStore } from '../durable/durable-store.js';
import type { Frame } from '../ipc/frame.js';

/** Bytes a strong put may have queued for the store before the client is slowed down. */
const HIGH_WATER = 32 * 1024 * 1024;

/**
 * The durable half of a strong put: the flight object streams to the store while the
 * batches still arrive (the store's multipart parts go out meanwhile), so acknowledging
 * the put waits only for the tail. The put session writes each message here as well as
 * to its tier; `finish` resolves once the store confirms the whole object.
 */
export class StrongSink {
  private readonly encoder = new FlightObjectEncoder();
  private readonly controller = new AbortController();
  private queue: Buffer[] = [];
  private queued = 0;
  private ended = false;
  private failure: Error | undefined;
  private wakeReader: (() => void) | undefined;
  private wakeWriters: (() => void)[] = [];
  private readonly done: Promise<void>;
  /** The store's version of the object, once it confirmed it. */
  private version: string | undefined;
  private readonly started = performance.now();

  constructor(
    readonly store: DurableStore,
    readonly key: string,
    private readonly path: string,
  ) {
    this.done = store.put(key, this.body(), { signal: this.controller.signal }).then(
      (info) => {
        this.version = info.version;
      },
      (err: unknown) => {
        this.failure = err as Error;
        this.wake();
        throw err;
      },
    );
    // The session reports the failure when it next writes or commits.
    this.done.catch(() => undefined);
  }

  writeSchema(header: Buffer): Promise<void> {
    return this.push(this.encoder.writeSchema(header));
  }

  writeMessage(frame: Frame): Promise<void> {
    return this.push(this.encoder.writeMessage(frame));
  }

  /** Seconds since the upload started. */
  get seconds(): number {
    return (performance.now() - this.started) / 1000;
  }

  /** Ends the object and waits for the store to confirm it. */
  async finish(meta: FlightMeta): Promise<FlightObject> {
    await this.push(this.encoder.finish(meta));
    this.ended = true;
    this.wake();
    try {
      await this.done;
    } catch (err) {
      throw this.unavailable(err);
    }
    return { ...this.encoder.object(this.key, meta), version: this.version };
  }

  /** Abandons the object: the store discards what it received. */
  abort(): void {
    if (this.ended && !this.failure) return;
    this.ended = true;
    this.controller.abort(new Error(`the put of "${this.path}" was abandoned`));
    this.queue = [];
    this.wake();
  }

  private async push(buffers: Buffer[]): Promise<void> {
    if (this.failure) throw this.unavailable(this.failure);
    for (const b of buffers) {
      this.queue.push(b);
      this.queued += b.length;
    }
    this.wakeReader?.();
    while (this.queued > HIGH_WATER && !this.failure) {
      await new Promise<void>((resolve) => this.wakeWriters.push(resolve));
    }
    if (this.failure) throw this.unavailable(this.failure);
  }

  private async *body(): AsyncGenerator<Buffer> {
    for (;;) {
      if (this.queue.length > 0) {
        const chunk = this.queue.shift() as Buffer;
        this.queued -= chunk.length;
        if (this.queued <= HIGH_WATER) this.releaseWriters();
        yield chunk;
        continue;
      }
      if (this.ended || this.controller.signal.aborted) return;
      await new Promise<void>((resolve) => (this.wakeReader = resolve));
      this.wakeReader = undefined;
    }
  }

  private wake(): void {
    this.wakeReader?.();
    this.releaseWriters();
  }

  private releaseWriters(): void {
    const writers = this.wakeWriters;
    this.wakeWriters = [];
    for (const w of writers) w();
  }

  private unavailable(err: unknown): UnavailableError {
    return new UnavailableError(
      `flight "${this.path}": the durable store "${this.store.id}" did not take the flight, so the put failed ` +
        `and nothing is visible (durability: strong): ${(err as Error).message}`,
    );
  }
}
