import type { Clock } from '../core/clock.js';
import {
  ReservationExistsError,
  ReservationNotClaimableError,
  ReservationNotFoundError,
  type Reservation,
  type ReservationStore,
} from './reservation-store.js';

/** How long an expired reservation is kept before it is forgotten (create must still see it meanwhile). */
const RETAIN_EXPIRED_MS = 60 * 60 * 1000;

/** Reservations in this process (`reservations.store.type: memory`, the default): one node only. */
export class MemoryReservationStore implements ReservationStore {
  readonly type = 'memory';
  private readonly reservations = new Map<string, Reservation>();

  constructor(private readonly clock: Clock) {}

  now(): Promise<number> {
    return Promise.resolve(Math.floor(this.clock.now()));
  }

  async create(key: string, owner: string, ttlMs: number): Promise<Reservation> {
    const now = await this.now();
    this.forgetOld(now);
    if (this.reservations.has(key)) throw new ReservationExistsError(key);
    return this.put(key, owner, now + Math.round(ttlMs));
  }

  async updateIfExpiredOrOwned(key: string, owner: string, ttlMs: number): Promise<Reservation> {
    const now = await this.now();
    const current = this.reservations.get(key);
    if (!current) throw new ReservationNotFoundError(key);
    if (current.expiresAt > now && current.owner !== owner) throw new ReservationNotClaimableError(key, { ...current });
    return this.put(key, owner, now + Math.round(ttlMs));
  }

  get(key: string): Promise<Reservation> {
    const current = this.reservations.get(key);
    return current ? Promise.resolve({ ...current }) : Promise.reject(new ReservationNotFoundError(key));
  }

  async delete(key: string, owner?: string): Promise<boolean> {
    const current = this.reservations.get(key);
    if (!current) return false;
    if (owner !== undefined && current.owner !== owner && current.expiresAt > (await this.now())) return false;
    return this.reservations.delete(key);
  }

  async countLive(): Promise<number> {
    const now = await this.now();
    let live = 0;
    for (const r of this.reservations.values()) if (r.expiresAt > now) live++;
    return live;
  }

  /** One node: its waiters hear of its puts and releases directly. */
  notify(): Promise<void> {
    return Promise.resolve();
  }

  onNotice(): Promise<void> {
    return Promise.resolve();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  private put(key: string, owner: string, expiresAt: number): Reservation {
    const reservation = { key, owner, expiresAt };
    this.reservations.delete(key); // keep the map in expiry order, roughly: oldest first
    this.reservations.set(key, reservation);
    return { ...reservation };
  }

  /** Drops reservations expired for an hour, so a long-running server does not keep every path it ever saw. */
  private forgetOld(now: number): void {
    for (const [key, r] of this.reservations) {
      if (r.expiresAt + RETAIN_EXPIRED_MS > now) break;
      this.reservations.delete(key);
    }
  }
}
