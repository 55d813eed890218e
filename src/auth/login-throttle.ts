import { limit } from '../core/limit.js';
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';

/**
 * The brake on password guessing (README "Security"): failed logins are counted per user
 * name and per client address (token buckets from rate-limiter-flexible), and past a limit
 * further logins by that name or from that address are refused before any password is
 * checked, until the window ends. A successful login clears its user's count. Per node.
 */
export const FAILURES_PER_USER = 10;
export const FAILURES_PER_PEER = 50;
/** The window failures are counted in, and how long a name or address stays refused after it. */
export const THROTTLE_SECONDS = 300;

/**
 * Password checks (argon2id) run on libuv's small thread pool, which disk tiers share:
 * at most this many at once, so a flood of logins neither starves file I/O nor the logins
 * queued behind it for long.
 */
const CONCURRENT_PASSWORD_CHECKS = 2;

export class LoginThrottle {
  private readonly byUser = new RateLimiterMemory({
    keyPrefix: 'user',
    points: FAILURES_PER_USER,
    duration: THROTTLE_SECONDS,
    blockDuration: THROTTLE_SECONDS,
  });
  private readonly byPeer = new RateLimiterMemory({
    keyPrefix: 'peer',
    points: FAILURES_PER_PEER,
    duration: THROTTLE_SECONDS,
    blockDuration: THROTTLE_SECONDS,
  });
  private readonly checks = limit(CONCURRENT_PASSWORD_CHECKS);

  /** Seconds until `user` or `peer` may try again, or 0 when neither is refused. */
  async retryAfter(user: string, peer: string | undefined): Promise<number> {
    const states = await Promise.all([this.byUser.get(user), peer === undefined ? null : this.byPeer.get(peer)]);
    let ms = 0;
    states.forEach((s, i) => {
      const limit = i === 0 ? FAILURES_PER_USER : FAILURES_PER_PEER;
      if (s && s.consumedPoints >= limit) ms = Math.max(ms, s.msBeforeNext);
    });
    return Math.ceil(ms / 1000);
  }

  /** Counts a failed login against its user name and address. */
  async failed(user: string, peer: string | undefined): Promise<void> {
    await Promise.all([
      this.byUser.consume(user).catch(ignoreLimit),
      peer === undefined ? undefined : this.byPeer.consume(peer).catch(ignoreLimit),
    ]);
  }

  /** A successful login clears its user's failures (its address keeps its count). */
  async succeeded(user: string): Promise<void> {
    await this.byUser.delete(user);
  }

  /** Runs a password check within the bound on concurrent checks. */
  check<T>(verify: () => Promise<T>): Promise<T> {
    return this.checks(verify);
  }
}

/** `consume` rejects with the limiter's state once the limit is passed: counted, nothing more to do. */
function ignoreLimit(err: unknown): void {
  if (!(err instanceof RateLimiterRes)) throw err;
}
