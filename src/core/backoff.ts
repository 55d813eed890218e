/** Longest wait between two attempts. */
const MAX_BACKOFF_MS = 30_000;

/**
 * How long to wait before retry `attempt` (0-based): exponential from `baseMs`, capped at
 * 30 s, with jitter (between half and all of it) so retries from many flights spread out.
 */
export function backoff(attempt: number, baseMs = 250, random: () => number = Math.random): number {
  return Math.min(MAX_BACKOFF_MS, baseMs * 2 ** attempt) * (0.5 + random() / 2);
}
