import type { ReservationsConfig } from '../config/schema.js';
import type { Clock } from '../core/clock.js';
import { MemoryReservationStore } from './memory-store.js';
import type { ReservationStore } from './reservation-store.js';

export { Reservations, type CoordinationEvent, type ReserveResult, type WaitOutcome } from './reservations.js';
export type { ReservationStore } from './reservation-store.js';

/** The reservation store `reservations.store` names; Redis is connected (and its client loaded) only when chosen. */
export async function createReservationStore(config: ReservationsConfig, clock: Clock): Promise<ReservationStore> {
  if (config.store.type === 'memory') return new MemoryReservationStore(clock);
  const { RedisReservationStore } = await import('./redis-store.js');
  return RedisReservationStore.connect(config.store.url, config.store.keyPrefix);
}
