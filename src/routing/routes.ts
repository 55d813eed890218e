import type { StorageClassConfig } from '../config/schema.js';
import type { FlightPath } from '../core/path.js';
import { ClassRouter, type RoutedClass } from './router.js';

/**
 * The storage classes in force, one object for the life of the server: a reload replaces
 * the router inside it, so the parts that route paths hold this and never a stale router.
 */
export class Routes {
  private router: ClassRouter;

  constructor(classes: readonly StorageClassConfig[]) {
    this.router = new ClassRouter(classes);
  }

  get classes(): readonly RoutedClass[] {
    return this.router.classes;
  }

  /** The class of a flight path; INVALID_ARGUMENT when none matches. */
  route(path: FlightPath): RoutedClass {
    return this.router.route(path, path.split('/'));
  }

  /** The durable store of the class a flight path routes to, if any. */
  durableStoreOf(path: FlightPath): string | undefined {
    try {
      return this.router.route(path, path.split('/')).config.durableStore;
    } catch {
      return undefined; // routes to no class: not found, as before
    }
  }

  /** A reload's classes, in force from now on (the router is built by the caller, so it cannot fail here). */
  replace(router: ClassRouter): void {
    this.router = router;
  }
}
