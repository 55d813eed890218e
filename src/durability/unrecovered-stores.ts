import type { FlightPath } from '../core/path.js';
import type { Routes } from '../routing/routes.js';

/**
 * The durable stores whose flights are not all known here yet, and why: `unreachable` (it
 * has not answered since the start, or its listing failed: a lookup of a path that routes
 * to it answers UNAVAILABLE naming it, since the flight may be there) or `listing` (it
 * answers, and its listing has not reached every object yet: a lookup of a path not known
 * here asks the store for that one object). Recovery keeps this up to date.
 */
export class UnrecoveredStores {
  private readonly stores = new Map<string, 'unreachable' | 'listing'>();

  constructor(private readonly routes: Routes) {}

  unreachable(store: string): void {
    this.stores.set(store, 'unreachable');
  }

  listing(store: string): void {
    this.stores.set(store, 'listing');
  }

  /** Every flight of the store is known here. */
  recovered(store: string): void {
    this.stores.delete(store);
  }

  /** Stores that have not answered (degraded). */
  get list(): string[] {
    return [...this.stores].filter(([, state]) => state === 'unreachable').map(([store]) => store);
  }

  /** Whether some store's flights are not all known here. */
  get any(): boolean {
    return this.stores.size > 0;
  }

  /** The state of the store a normalised path's flight would be in, if that store is not recovered. */
  stateOf(path: FlightPath): { store: string; state: 'unreachable' | 'listing' } | undefined {
    if (this.stores.size === 0) return undefined;
    const store = this.routes.durableStoreOf(path);
    const state = store === undefined ? undefined : this.stores.get(store);
    return store !== undefined && state !== undefined ? { store, state } : undefined;
  }

  /** The unreachable store a normalised path's flight may still be found in, if any. */
  storeOf(path: FlightPath): string | undefined {
    const found = this.stateOf(path);
    return found?.state === 'unreachable' ? found.store : undefined;
  }

  /** Stores still being listed. */
  get listed(): string[] {
    return [...this.stores].filter(([, state]) => state === 'listing').map(([store]) => store);
  }
}
