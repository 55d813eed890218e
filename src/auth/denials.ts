import type { Logger } from '../core/log.js';

/** A call refused for lack of permission: who, what access, where, from which address. */
export interface Denial {
  user: string;
  access: string;
  path: string;
  peer?: string | undefined;
}

/** How many denials are logged one by one per window; the rest are counted and summed up. */
const LOGGED_PER_WINDOW = 20;
const WINDOW_MS = 10_000;

/**
 * Reports permission denials (README "Security"): each is counted (`count`) and logged at
 * warn with the user, the access, the path and the peer, at most LOGGED_PER_WINDOW lines
 * per 10 s, so a flood of refused calls cannot fill the disk; the denials left out are
 * logged as one line with their number when the window ends.
 */
export function denialReporter(log: Logger, count: () => void, now: () => number = Date.now): (d: Denial) => void {
  let windowStart = 0;
  let logged = 0;
  let suppressed = 0;
  return (denial) => {
    count();
    const t = now();
    if (t - windowStart >= WINDOW_MS) {
      if (suppressed > 0)
        log.warn({ suppressed, windowMs: WINDOW_MS }, 'more permission denials, not logged one by one');
      windowStart = t;
      logged = 0;
      suppressed = 0;
    }
    if (logged < LOGGED_PER_WINDOW) {
      logged++;
      log.warn(denial, 'permission denied');
    } else suppressed++;
  };
}
