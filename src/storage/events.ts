import type { StorageTypeName } from '../config/schema.js';
import type { CopyLocation } from './storage-type.js';
import type { RoutedClass } from '../routing/router.js';
import type { FlightVersion } from './flight.js';

/**
 * Every placement decision the manager makes, as an event: metrics count them, and tests
 * can observe them. The manager never depends on who listens.
 */
export type PlacementEvent =
  | { type: 'put'; version: FlightVersion; storage: CopyLocation; tier: number }
  | { type: 'hit'; version: FlightVersion; storage: CopyLocation; tier: number }
  | { type: 'miss'; path: string }
  | { type: 'spill'; cls: RoutedClass; from: StorageTypeName; to: StorageTypeName }
  | { type: 'evict'; version: FlightVersion; storage: StorageTypeName; tier: number; outcome: 'dropped' | 'spilled' }
  | { type: 'move' | 'promote'; version: FlightVersion; from: StorageTypeName; to: StorageTypeName }
  | { type: 'expire'; version: FlightVersion }
  | { type: 'restore'; version: FlightVersion; storage: StorageTypeName; tier: number; bytes: number; seconds: number }
  | { type: 'durable-write'; version: FlightVersion; durability: 'weak' | 'strong'; bytes: number; seconds: number }
  | { type: 'limit-reject' | 'limit-evict'; policy: string }
  /** A copy to another tier failed: the flight stays where it was (or readable from its durable copy). */
  | {
      type: 'relocation-failed';
      version: FlightVersion;
      operation: 'evict' | 'move' | 'promote' | 'spill' | 'restore';
      cause: 'no-room' | 'error';
    }
  | {
      type: 'durable-failure';
      cls: RoutedClass;
      operation: 'upload' | 'restore' | 'delete';
      kind: 'not_found' | 'transient' | 'permanent';
    };

export type PlacementObserver = (event: PlacementEvent) => void;

/**
 * Placement events to every subscriber (metrics and logs: observers only; what must happen
 * when a flight lands is a direct call, `Landing`), in subscription order. A subscriber that throws is a bug in it: the error is
 * reported through `onError` and the others still get the event, so observing can never
 * break a placement decision.
 */
export class PlacementEvents {
  private readonly subscribers = new Set<PlacementObserver>();

  constructor(private readonly onError: (err: unknown, event: PlacementEvent) => void = () => undefined) {}

  /** Adds a subscriber; returns the function that removes it. */
  subscribe(subscriber: PlacementObserver): () => void {
    this.subscribers.add(subscriber);
    return () => this.subscribers.delete(subscriber);
  }

  emit(event: PlacementEvent): void {
    for (const subscriber of this.subscribers) {
      try {
        subscriber(event);
      } catch (err) {
        this.onError(err, event);
      }
    }
  }
}
