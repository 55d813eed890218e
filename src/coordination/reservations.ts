import type { ReservationsConfig } from '../config/schema.js';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/log.js';
import { InvalidArgumentError, ResourceExhaustedError, retryHere, UnavailableError } from '../errors.js';

/** A user at reservations.maxPerUser frees one as a fill completes: told to wait this long. */
const MAX_PER_USER_RETRY_MS = 5000;
import type { FlightVersion } from '../storage/flight.js';
import type { Landing } from '../storage/landing.js';
import {
  ReservationExistsError,
  ReservationNotClaimableError,
  ReservationNotFoundError,
  type LandingNotice,
  type Reservation,
  type ReservationStore,
} from './reservation-store.js';

/** What the coordinator asks of the storage it coordinates. */
export interface LandingHost {
  /** Whether a visible flight is at this normalised path now. */
  has(path: string): boolean;
  /**
   * Makes a flight another node put visible here, by reading it from the durable store the
   * nodes share; false when it is not there (a class without durability, or not uploaded).
   */
  adopt(path: string): Promise<boolean>;
}

/** What `reserve` answers (DESIGN §6). */
export interface ReserveResult {
  status: 'acquired' | 'held';
  owner: string;
  /** RFC 3339. */
  expiresAt: string;
}

/** How a wait for a reserved flight ended; `ended`: by CancelFlightInfo on its path. */
export type WaitOutcome = 'landed' | 'timeout' | 'released' | 'cancelled' | 'ended' | 'not-reserved';

/** What the coordinator observes, for metrics and logs. */
export type CoordinationEvent =
  | { type: 'reserve'; outcome: 'acquired' | 'extended' | 'held' | 'expired' }
  | { type: 'release'; released: boolean; byPut: boolean }
  | { type: 'wait'; outcome: WaitOutcome; seconds: number }
  /** One put served this many waiters at once: the herd that did not compute. */
  | { type: 'herd'; waiters: number }
  /** A reserve or a wait refused by a bound (RESOURCE_EXHAUSTED). */
  | { type: 'refused'; reason: RefusalReason };

/** Which bound refused a reserve or a wait. */
export type RefusalReason = 'max_waiters' | 'max_waiters_per_user' | 'max_per_user';

interface Waiter {
  wake(outcome: WaitOutcome): void;
}

/** Attempts at reserve when the reservation vanishes between the steps (deleted or released meanwhile). */
const RESERVE_ATTEMPTS = 5;

/**
 * Cache-fill coordination (DESIGN §6): one client reserves a missing flight's path and
 * computes it, the others wait for it to land. Reservations live in a ReservationStore
 * (memory or Redis) and last `heartbeat × graceMultiplier` from each reserve call; a put
 * carrying the owner releases it. Waiters are woken by the put itself (the manager calls
 * `landed`, the storage's landing hook), by a release, or by the reservation's expiry, never
 * by polling, and there are at most `maxWaiters` at once.
 */
export class Reservations implements Pick<Landing, 'landed' | 'durable'> {
  private readonly waiters = new Map<string, Set<Waiter>>();
  private waiting = 0;
  /** Calls waiting now, per authenticated user (`maxWaitersPerUser`). */
  private readonly waitingByUser = new Map<string, number>();
  /** Reservations taken through this node, per authenticated user: path → when it lapses (`maxPerUser`). */
  private readonly heldByUser = new Map<string, Map<string, number>>();
  private live = 0;
  private observers: ((event: CoordinationEvent) => void)[] = [];

  constructor(
    readonly store: ReservationStore,
    private config: ReservationsConfig,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly landing: LandingHost = { has: () => false, adopt: () => Promise.resolve(false) },
  ) {}

  /**
   * A put made `version` visible here: this node's waiters for its path answer at once;
   * other nodes' waiters are told once the flight is in the durable store they share (a
   * weak class's upload is still queued: `durable` tells them); and the delivery of an
   * owner's computation (not another node's copy) releases the owner's reservation. A
   * release the store refuses is logged: the flight landed, and the reservation lapses.
   */
  async landed(version: FlightVersion, copied: boolean): Promise<void> {
    const { path, owner } = version;
    this.wake(path, 'landed');
    if (owner === undefined) return;
    if (version.durable?.state !== 'pending') this.notify({ path, kind: 'landed' });
    if (copied) return;
    await this.release(path, owner, true).catch((err: unknown) => {
      this.log.warn({ path, err: (err as Error).message }, 'the put landed but its reservation could not be released');
    });
  }

  /** A weak class's upload of an owner's flight is in the store: other nodes' waiters can read it now. */
  durable(version: FlightVersion): void {
    if (version.owner !== undefined) this.notify({ path: version.path, kind: 'landed' });
  }

  /** Starts hearing other nodes' notices (a shared store only). */
  async start(): Promise<void> {
    await this.store.onNotice((notice) => void this.heard(notice));
  }

  /** Reloaded settings (grace, heartbeat cap, waiter bound); the store itself needs a restart. */
  reconfigure(config: ReservationsConfig): void {
    this.config = config;
  }

  observe(observer: (event: CoordinationEvent) => void): void {
    this.observers.push(observer);
  }

  /**
   * Reserves `path` for `owner`: `acquired` when it was free, expired or already the
   * owner's (extended), else `held` with the holder and its expiry. Never an error for a
   * held path; UNAVAILABLE when the store cannot be reached.
   */
  async reserve(path: string, owner: string, heartbeatSeconds: number, user?: string): Promise<ReserveResult> {
    checkOwner(owner);
    if (!Number.isFinite(heartbeatSeconds) || heartbeatSeconds <= 0) {
      throw new InvalidArgumentError(`reserve: heartbeatSeconds must be a positive number of seconds`);
    }
    const heartbeatMs = Math.min(heartbeatSeconds * 1000, this.config.maxHeartbeat);
    const ttlMs = heartbeatMs * this.config.graceMultiplier;
    this.checkHeld(path, user);
    const held = (r: Reservation, outcome: 'acquired' | 'extended' | 'expired'): ReserveResult => {
      if (user !== undefined) this.holding(user).set(path, this.clock.now() + ttlMs);
      return this.acquired(r, outcome);
    };
    for (let attempt = 0; attempt < RESERVE_ATTEMPTS; attempt++) {
      try {
        const r = await this.guard(() => this.store.create(path, owner, ttlMs));
        return held(r, 'acquired');
      } catch (err) {
        if (!(err instanceof ReservationExistsError)) throw err;
      }
      try {
        const before = await this.guard(() => this.store.get(path)).catch(() => undefined);
        const r = await this.guard(() => this.store.updateIfExpiredOrOwned(path, owner, ttlMs));
        return held(r, before?.owner === owner ? 'extended' : 'expired');
      } catch (err) {
        if (err instanceof ReservationNotClaimableError && err.holder) {
          this.emit({ type: 'reserve', outcome: 'held' });
          this.log.debug({ path, owner, holder: err.holder.owner }, 'reservation held by another owner');
          return { status: 'held', owner: err.holder.owner, expiresAt: rfc3339(err.holder.expiresAt) };
        }
        if (!(err instanceof ReservationNotFoundError)) throw err;
        // Released between our create and update: try again from the start.
      }
    }
    throw new UnavailableError(`reserve "${path}": the reservation kept changing under ${RESERVE_ATTEMPTS} attempts`);
  }

  /**
   * Releases `owner`'s reservation of `path`. Idempotent: true when it is no longer
   * reserved by anyone live after the call (released now, already gone or expired);
   * false when another owner holds it (left alone). Waiters are woken: they answer at once.
   */
  async release(path: string, owner: string, byPut = false): Promise<boolean> {
    checkOwner(owner);
    const deleted = await this.guard(() => this.store.delete(path, owner));
    let released = deleted;
    if (!deleted) {
      const current = await this.guard(() => this.store.get(path)).catch((err: unknown) => {
        if (err instanceof ReservationNotFoundError) return undefined;
        throw err;
      });
      released = current === undefined || current.owner === owner;
    }
    this.emit({ type: 'release', released, byPut });
    this.log.debug({ path, owner, released, byPut }, 'reservation released');
    if (released) for (const paths of this.heldByUser.values()) paths.delete(path);
    if (deleted && !byPut) {
      this.wake(path, 'released');
      this.notify({ path, kind: 'released' });
    }
    return released;
  }

  /**
   * Waits for an absent flight whose path is reserved: until a put of it lands, it is
   * released, `waitMs` passes or the reservation expires, whichever is first; at once when
   * nobody holds a live reservation. `signal` (the client cancelling) ends the wait and
   * frees its slot. RESOURCE_EXHAUSTED past `maxWaiters`.
   */
  async waitFor(path: string, waitMs: number, signal?: AbortSignal, user?: string): Promise<WaitOutcome> {
    const started = this.clock.now();
    const reservation = await this.holder(path);
    if (!reservation || waitMs <= 0 || signal?.aborted) return this.waited('not-reserved', started);
    const now = await this.guard(() => this.store.now());
    if (this.waiting >= this.config.maxWaiters) {
      this.emit({ type: 'refused', reason: 'max_waiters' });
      throw new ResourceExhaustedError(
        `too many calls are waiting for reserved flights (reservations.maxWaiters: ${this.config.maxWaiters})`,
      );
    }
    const mine = user === undefined ? 0 : (this.waitingByUser.get(user) ?? 0);
    if (user !== undefined && mine >= this.config.maxWaitersPerUser) {
      this.emit({ type: 'refused', reason: 'max_waiters_per_user' });
      throw new ResourceExhaustedError(
        `user "${user}" has ${mine} calls waiting for reserved flights (reservations.maxWaitersPerUser: ${this.config.maxWaitersPerUser})`,
      );
    }
    const limit = Math.min(waitMs, reservation.expiresAt - now);
    const outcome = await new Promise<WaitOutcome>((resolve) => {
      let set = this.waiters.get(path);
      if (!set) {
        set = new Set();
        this.waiters.set(path, set);
      }
      const waiters = set;
      const timeout = new AbortController();
      let done = false;
      const waiter: Waiter = {
        wake: (o) => {
          if (done) return;
          done = true;
          timeout.abort();
          this.waiting--;
          if (user !== undefined) {
            const left = (this.waitingByUser.get(user) ?? 1) - 1;
            if (left > 0) this.waitingByUser.set(user, left);
            else this.waitingByUser.delete(user);
          }
          waiters.delete(waiter);
          if (waiters.size === 0 && this.waiters.get(path) === waiters) this.waiters.delete(path);
          signal?.removeEventListener('abort', onAbort);
          resolve(o);
        },
      };
      const onAbort = (): void => waiter.wake('cancelled');
      this.waiting++;
      if (user !== undefined) this.waitingByUser.set(user, (this.waitingByUser.get(user) ?? 0) + 1);
      waiters.add(waiter);
      // A put that landed while the reservation was being read woke nobody: look once more.
      if (this.landing.has(path)) {
        waiter.wake('landed');
        return;
      }
      signal?.addEventListener('abort', onAbort);
      void this.clock.sleep(limit, timeout.signal).then(() => waiter.wake('timeout'));
      void this.recheck(path, waiter);
    });
    return this.waited(outcome, started);
  }

  /** The live reservation of `path`, if any. */
  async holder(path: string): Promise<Reservation | undefined> {
    const r = await this.guard(() => this.store.get(path)).catch((err: unknown) => {
      if (err instanceof ReservationNotFoundError) return undefined;
      throw err;
    });
    return r && r.expiresAt > (await this.guard(() => this.store.now())) ? r : undefined;
  }

  /**
   * Ends every wait for `path` on this node (CancelFlightInfo): the waiting calls answer
   * CANCELLED. The reservation itself stays with its owner. Returns how many ended.
   */
  endWaits(path: string): number {
    const count = this.waiters.get(path)?.size ?? 0;
    this.wake(path, 'ended');
    if (count > 0) this.log.info({ path, waiters: count }, 'waits for a reserved flight ended by CancelFlightInfo');
    return count;
  }

  /** Refuses a new reservation past `maxPerUser` live ones taken by this user (renewing one it holds is fine). */
  private checkHeld(path: string, user: string | undefined): void {
    if (user === undefined) return;
    const paths = this.holding(user);
    const now = this.clock.now();
    for (const [p, until] of paths) if (until <= now) paths.delete(p);
    if (paths.has(path) || paths.size < this.config.maxPerUser) return;
    this.emit({ type: 'refused', reason: 'max_per_user' });
    throw new ResourceExhaustedError(
      `user "${user}" holds ${paths.size} reservations (reservations.maxPerUser: ${this.config.maxPerUser}): release or complete some first`,
      retryHere(MAX_PER_USER_RETRY_MS),
    );
  }

  private holding(user: string): Map<string, number> {
    let paths = this.heldByUser.get(user);
    if (!paths) {
      paths = new Map();
      this.heldByUser.set(user, paths);
    }
    return paths;
  }

  /** Calls waiting now. */
  get waiterCount(): number {
    return this.waiting;
  }

  /** Live reservations, as last counted (`refreshCount`). */
  get liveCount(): number {
    return this.live;
  }

  /** Counts live reservations in the store (stats and the held gauge); keeps the last count when it is down. */
  async refreshCount(): Promise<number> {
    this.live = await this.store.countLive().catch(() => this.live);
    return this.live;
  }

  async close(): Promise<void> {
    for (const path of [...this.waiters.keys()]) this.wake(path, 'timeout');
    await this.store.close();
  }

  /**
   * A release (or another node's put and its notice) between reading the reservation and
   * registering the waiter woke nobody: once registered, read the reservation again; if it
   * is gone, the flight is here (or in the shared durable store), or it is not coming.
   */
  private async recheck(path: string, waiter: Waiter): Promise<void> {
    const current = await this.holder(path).catch(() => null);
    if (current !== undefined) return; // still reserved, or the store cannot say: keep waiting
    const landed = this.landing.has(path) || (await this.landing.adopt(path).catch(() => false));
    waiter.wake(landed ? 'landed' : 'released');
  }

  private notify(notice: LandingNotice): void {
    this.store.notify(notice).catch((err: unknown) => {
      this.log.warn(
        { ...notice, err: (err as Error).message },
        'could not tell the other nodes about a reserved flight',
      );
    });
  }

  /** Another node's notice: this node's waiters for the path get the flight (read from the durable store) or answer now. */
  private async heard(notice: LandingNotice): Promise<void> {
    if (!this.waiters.has(notice.path)) return;
    if (notice.kind === 'released') {
      this.wake(notice.path, 'released');
      return;
    }
    const adopted = await this.landing.adopt(notice.path).catch((err: unknown) => {
      this.log.warn({ path: notice.path, err: (err as Error).message }, 'could not read a flight another node put');
      return false;
    });
    this.log.debug({ path: notice.path, adopted }, 'another node delivered a reserved flight');
    this.wake(notice.path, adopted ? 'landed' : 'released');
  }

  private wake(path: string, outcome: WaitOutcome): void {
    const set = this.waiters.get(path);
    if (!set) return;
    const count = set.size;
    for (const waiter of [...set]) waiter.wake(outcome);
    if (outcome === 'landed' && count > 0) {
      this.emit({ type: 'herd', waiters: count });
      this.log.debug({ path, waiters: count }, 'a put served the calls waiting for it');
    }
  }

  private acquired(r: Reservation, outcome: 'acquired' | 'extended' | 'expired'): ReserveResult {
    this.emit({ type: 'reserve', outcome });
    this.log.debug({ path: r.key, owner: r.owner, expiresAt: rfc3339(r.expiresAt), outcome }, 'reservation acquired');
    return { status: 'acquired', owner: r.owner, expiresAt: rfc3339(r.expiresAt) };
  }

  private waited(outcome: WaitOutcome, started: number): WaitOutcome {
    this.emit({ type: 'wait', outcome, seconds: (this.clock.now() - started) / 1000 });
    return outcome;
  }

  private emit(event: CoordinationEvent): void {
    for (const observer of this.observers) observer(event);
  }

  /** Store failures (Redis down) are UNAVAILABLE; the protocol's own errors pass through. */
  private async guard<T>(op: () => Promise<T>): Promise<T> {
    try {
      return await op();
    } catch (err) {
      if (
        err instanceof ReservationExistsError ||
        err instanceof ReservationNotClaimableError ||
        err instanceof ReservationNotFoundError
      ) {
        throw err;
      }
      throw new UnavailableError(
        `the reservation store (${this.store.type}) cannot be reached: ${(err as Error).message}`,
      );
    }
  }
}

function checkOwner(owner: unknown): asserts owner is string {
  if (typeof owner !== 'string' || owner.length === 0 || owner.length > 256) {
    throw new InvalidArgumentError('owner must be a non-empty string of at most 256 characters');
  }
}

function rfc3339(ms: number): string {
  return new Date(ms).toISOString();
}
