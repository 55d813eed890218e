/**
 * Where cache-fill reservations live (DESIGN §6). Every operation is atomic on its own;
 * what makes the protocol safe is their error semantics, which every store keeps and the
 * conformance suite (test/coordination/conformance.ts) checks:
 *
 * - `create` fails with ReservationExistsError when the key exists, even when that
 *   reservation has expired (so two claimers of an expired key both go on to `update`,
 *   where exactly one wins);
 * - `updateIfExpiredOrOwned` succeeds only when the reservation has expired or belongs to
 *   the caller, atomically, and fails with ReservationNotClaimableError otherwise
 *   (ReservationNotFoundError when there is none);
 * - `get` fails with ReservationNotFoundError when there is none;
 * - `delete` removes a reservation; given an owner, only that owner's or an expired one.
 *
 * Expiry is measured on the store's own clock (`now`), the one clock every node sharing
 * the store agrees on: the memory store's is the process clock, Redis's is the server's
 * `TIME`. Times are whole milliseconds since the epoch; a reservation is live while
 * now < expiresAt.
 */

export interface Reservation {
  key: string;
  owner: string;
  /** Milliseconds since the epoch on the store's clock. */
  expiresAt: number;
}

export interface ReservationStore {
  readonly type: 'memory' | 'redis';
  /** Why the store could not be reached when it was opened, if it could not (it keeps trying). */
  readonly startError?: string | undefined;
  /** The store's clock: milliseconds since the epoch. */
  now(): Promise<number>;
  /** A new reservation lasting `ttlMs`; ReservationExistsError if the key exists, expired or not. */
  create(key: string, owner: string, ttlMs: number): Promise<Reservation>;
  /** Makes an expired or own reservation `owner`'s for `ttlMs` from now; ReservationNotClaimableError otherwise. */
  updateIfExpiredOrOwned(key: string, owner: string, ttlMs: number): Promise<Reservation>;
  get(key: string): Promise<Reservation>;
  /** Deletes the key's reservation (with `owner`: only if it is that owner's or expired); whether one went. */
  delete(key: string, owner?: string): Promise<boolean>;
  /** Reservations live now. */
  countLive(): Promise<number>;
  /**
   * Tells every node sharing the store that a reserved path's flight landed or was released
   * (the memory store has no other node: a no-op); `onNotice` hears them, this node's too.
   */
  notify(notice: LandingNotice): Promise<void>;
  onNotice(listener: (notice: LandingNotice) => void): Promise<void>;
  close(): Promise<void>;
}

/** A reserved path's flight landed (readable from its durable store) or was released without one. */
export interface LandingNotice {
  path: string;
  kind: 'landed' | 'released';
}

/** The key exists (live or expired): `create` lost; try `updateIfExpiredOrOwned`. */
export class ReservationExistsError extends Error {
  constructor(readonly key: string) {
    super(`a reservation of "${key}" exists`);
  }
}

/** Another owner holds a live reservation of the key. */
export class ReservationNotClaimableError extends Error {
  constructor(
    readonly key: string,
    readonly holder: Reservation | undefined,
  ) {
    super(`"${key}" is reserved by another owner`);
  }
}

export class ReservationNotFoundError extends Error {
  constructor(readonly key: string) {
    super(`no reservation of "${key}"`);
  }
}

/** The store could not be reached or answered nonsense; callers map it to UNAVAILABLE. */
export class ReservationStoreError extends Error {}
