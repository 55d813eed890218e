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
      operation: 'evict' | 'move' | 'promote' | 'restore';
      cause: 'no-room' | 'error';
    }
  | {
      type: 'durable-failure';
      cls: RoutedClass;
      operation: 'upload' | 'restore' | 'delete';
      kind: 'not_found' | 'transient' | 'permanent';
    };

export type PlacementObserver = (event: PlacementEvent) => void;
