import { backoff } from './backoff.js';
import type { Clock } from './clock.js';

export interface RetryOptions {
  /** Whose time the waits between attempts pass on (fake in tests). */
  clock: Clock;
  /** Attempts in all; unbounded by default (`retryable` decides when to stop). */
  attempts?: number;
  /** Whether a failure is worth another attempt; every failure by default. */
  retryable?: (err: unknown, attempt: number) => boolean;
  /** Told of each failure that will be retried, with the wait before the next attempt (log it). */
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
  /** The first wait; doubles each time up to 30 s, with jitter (`backoff`). */
  baseMs?: number;
  /** Ends the waits early: the last error is thrown. */
  signal?: AbortSignal;
}

/**
 * The one retry loop: runs `work` (given the 0-based attempt) until it succeeds; after a
 * failure `retryable` allows, waits `backoff(attempt)` on the clock and tries again, until
 * `attempts` are spent or `signal` aborts; then throws the last error.
 */
export async function retry<T>(work: (attempt: number) => Promise<T>, options: RetryOptions): Promise<T> {
  const attempts = options.attempts ?? Infinity;
  for (let attempt = 0; ; attempt++) {
    try {
      return await work(attempt);
    } catch (err) {
      const last = attempt + 1 >= attempts || options.signal?.aborted === true;
      if (last || !(options.retryable?.(err, attempt) ?? true)) throw err;
      const delayMs = backoff(attempt, options.baseMs);
      options.onRetry?.(err, attempt, delayMs);
      await options.clock.sleep(delayMs, options.signal);
      if (options.signal?.aborted) throw err;
    }
  }
}
