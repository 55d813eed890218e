import type { FlightVersion, RemovalReason } from './flight.js';

/**
 * Who is told, by a direct call, when a flight lands or leaves (reservations: DESIGN §6;
 * partitioned datasets: §9). Unlike the placement events, which only metrics and logs
 * observe, this hook is part of what happens: `landed` is awaited before the put's caller
 * gets its answer, and what it throws fails the call.
 */
export interface Landing {
  /**
   * A put made `version` visible here. `copied`: the version is another node's copy
   * (a replica or a handover), not the delivery of its owner's computation.
   */
  landed(version: FlightVersion, copied: boolean): Promise<void>;
  /** A weak class's durable copy of `version` reached the store after its put. */
  durable(version: FlightVersion): void;
  /** `version` left the catalog (replaced, deleted, evicted, expired, handed over). */
  retired(version: FlightVersion, reason: RemovalReason): void;
}

/** Nobody to tell: a manager without reservations (tests, benches). */
export const NO_LANDING: Landing = {
  landed: () => Promise.resolve(),
  durable: () => undefined,
  retired: () => undefined,
};
