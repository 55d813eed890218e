import type { Routes } from '../routing/routes.js';

/**
 * The durable stores whose flights have not been found yet (they have not answered since
 * the start): recovery adds and removes them, and a lookup of a path that routes to one
 * answers UNAVAILABLE naming it, since the flight may be there.
 */
export class UnrecoveredStores {
  private readonly stores = new Set<string>();

  constructor(private readonly routes: Routes) {}

  add(store: string): void {
    this.stores.add(store);
  }

  delete(store: string): void {
    this.stores.delete(store);
  }

  get list(): string[] {
    return [...this.stores];
  }

  /** The unrecovered store a normalised path's flight may still be found in, if any. */
  storeOf(path: string): string | undefined {
    if (this.stores.size === 0) return undefined;
    const store = this.routes.durableStoreOf(path);
    return store !== undefined && this.stores.has(store) ? store : undefined;
  }
}
