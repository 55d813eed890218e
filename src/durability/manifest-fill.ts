import type { Logger } from '../core/log.js';
import { limit, type Limit } from '../core/limit.js';
import type { Catalog } from '../storage/catalog.js';
import type { FlightVersion } from '../storage/flight.js';

/**
 * The background fill: reads the manifests of the unread versions the listings adopt, a
 * few at once, as they are adopted, so ListFlights, expiry and the limits become exact soon
 * after a start; stops at close.
 */
export class ManifestFill {
  private readonly queue: FlightVersion[] = [];
  private next = 0;
  /** The readers draining the queue, at most `concurrency` at once. */
  private readonly readers: Limit;
  private read = 0;
  /** Listings in progress: the fill is not done before they are. */
  private listings = 0;
  private closed = false;
  private started = performance.now();
  private waiters: (() => void)[] = [];

  constructor(
    private readonly catalog: Catalog,
    private readonly log: Logger,
    private readonly concurrency: number,
  ) {
    this.readers = limit(concurrency);
  }

  push(version: FlightVersion): void {
    if (this.closed) return;
    if (this.idle) this.started = performance.now(); // a new round: a retried listing, a prefix listed
    this.queue.push(version);
    // One more reader while fewer than `concurrency` drain the queue (each reads until it is empty).
    if (this.readers.activeCount + this.readers.pendingCount < this.concurrency) {
      // The limiter counts a reader out before its promise settles: the fill may be idle then.
      void this.readers(() => this.work()).finally(() => this.settle());
    }
  }

  listingStarted(): void {
    if (this.idle) this.started = performance.now();
    this.listings++;
  }

  /** A listing has ended: once none is left and the queue drains, the fill is done. */
  listingEnded(): void {
    this.listings = Math.max(0, this.listings - 1);
    this.settle();
  }

  close(): void {
    this.closed = true;
    this.queue.length = 0;
    this.next = 0;
    this.listings = 0;
    this.settle();
  }

  done(): Promise<void> {
    if (this.idle) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private get idle(): boolean {
    return (
      this.listings === 0 &&
      this.readers.activeCount + this.readers.pendingCount === 0 &&
      this.next >= this.queue.length
    );
  }

  private async work(): Promise<void> {
    while (!this.closed && this.next < this.queue.length) {
      const version = this.queue[this.next++] as FlightVersion;
      if (!version.unread || version.retired) continue;
      await this.catalog.manifests.read(version).then(
        () => this.read++,
        (err: unknown) =>
          this.log.warn({ path: version.path, err: (err as Error).message }, 'could not read a manifest'),
      );
    }
  }

  private settle(): void {
    if (!this.idle) return;
    if (this.queue.length > 0) {
      this.log.info(
        { manifests: this.read, seconds: (performance.now() - this.started) / 1000 },
        'durable manifests read',
      );
    }
    this.queue.length = 0;
    this.next = 0;
    this.read = 0;
    for (const resolve of this.waiters.splice(0)) resolve();
  }
}
