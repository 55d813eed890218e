import type { Clock } from './clock.js';

/**
 * Timers on the injected clock (so tests drive them with fake time), none of which keeps
 * the process alive; `stop` ends every one of them at once. A timer's function runs without
 * being awaited (a slow run never delays the next tick); what it throws goes to `onError`.
 */
export class Timers {
  private readonly stopped = new AbortController();

  constructor(
    private readonly clock: Clock,
    private readonly onError: (err: unknown) => void = () => undefined,
  ) {}

  /** Runs `fn` every `ms` until stopped. */
  every(ms: number, fn: () => unknown): void {
    const { signal } = this.stopped;
    void (async () => {
      while (!signal.aborted) {
        await this.clock.sleep(ms, signal);
        if (!signal.aborted) this.run(fn);
      }
    })();
  }

  /** Runs `fn` once after `ms` unless stopped or cancelled (the function it returns). */
  after(ms: number, fn: () => unknown): () => void {
    const cancel = new AbortController();
    const signal = AbortSignal.any([this.stopped.signal, cancel.signal]);
    void this.clock.sleep(ms, signal).then(() => {
      if (!signal.aborted) this.run(fn);
    });
    return () => cancel.abort();
  }

  /**
   * Runs `fn` once `ms` after the last call to the function it returns (a debounce: a burst
   * of calls runs it once, after the burst).
   */
  debounce(ms: number, fn: () => unknown): () => void {
    let cancel: (() => void) | undefined;
    return () => {
      cancel?.();
      cancel = this.after(ms, fn);
    };
  }

  stop(): void {
    this.stopped.abort();
  }

  private run(fn: () => unknown): void {
    try {
      const result = fn();
      if (result instanceof Promise) result.catch(this.onError);
    } catch (err) {
      this.onError(err);
    }
  }
}
