import { sleep } from './sleep.js';

/**
 * Time comes from an injected clock so that TTL, move-after, promote-after and retry
 * backoff can be tested with fake time instead of sleeps.
 */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
  /** Resolves once `ms` have passed on this clock, or `signal` aborts (never keeps the process alive). */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const systemClock: Clock = { now: () => Date.now(), sleep };

/** A clock the tests advance by hand; sleeps end when an advance reaches them. */
export class ManualClock implements Clock {
  private waiters: { at: number; wake: () => void }[] = [];

  constructor(private current = 0) {}

  now(): number {
    return this.current;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((wake) => {
      if (signal?.aborted) {
        wake();
        return;
      }
      const waiter = { at: this.current + Math.max(0, ms), wake };
      this.waiters.push(waiter);
      signal?.addEventListener('abort', () => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        wake();
      });
      this.wakeDue();
    });
  }

  advance(ms: number): void {
    this.current += ms;
    this.wakeDue();
  }

  set(ms: number): void {
    this.current = ms;
    this.wakeDue();
  }

  private wakeDue(): void {
    const due = this.waiters.filter((w) => w.at <= this.current);
    this.waiters = this.waiters.filter((w) => w.at > this.current);
    for (const w of due) w.wake();
  }
}
