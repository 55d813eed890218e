import pLimit, { type LimitFunction } from 'p-limit';

/** Runs the functions it is given at most `concurrency` at a time, the others in turn (p-limit). */
export type Limit = LimitFunction;

/**
 * The one concurrency limiter (uploads, manifest reads, password checks, job items, ...):
 * `limit(n)(() => work())` starts `work` once fewer than `n` are running. Its `concurrency`
 * can be changed while it runs.
 */
export function limit(concurrency: number): Limit {
  return pLimit(Math.max(1, concurrency));
}
