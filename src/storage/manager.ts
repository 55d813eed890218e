import type { Config, StorageTypeName } from '../config/schema.js';
import { formatSize } from '../config/units.js';
import { InvalidArgumentError, NotFoundError, ResourceExhaustedError } from '../errors.js';
import { isUnderPrefix, normalizePath, normalizePrefix } from '../routing/path.js';
import { ClassRouter, type RoutedClass } from '../routing/router.js';
import type { Clock } from '../util/clock.js';
import { silentLogger, type Logger } from '../util/log.js';
import { FlightVersion, type RemovalReason } from './flight.js';
import { PutSession, type PutHost } from './put-session.js';
import { ByteBudget, type StorageType } from './storage-type.js';

export interface ManagerOptions {
  config: Config;
  clock: Clock;
  logger?: Logger;
}

/** A pinned version handed to a reader; `release` exactly once when done. */
export interface FlightLease {
  readonly version: FlightVersion;
  release(): void;
}

export interface StorageTypeStats {
  capacity: number;
  used: number;
  flights: number;
  /** Bytes of versions no longer visible but still being read. */
  pinnedRetired: number;
  /** Bytes charged to uploads in progress. */
  reserved: number;
}

export interface ManagerStats {
  storageTypes: Partial<Record<StorageTypeName, StorageTypeStats>>;
  classes: Record<string, { prefix: string; flights: number; bytes: number }>;
  flights: number;
  putsInProgress: number;
}

/**
 * The one storage manager the Flight service talks to. It owns the catalog of visible
 * flights, each storage type's accounting, eviction and expiry; the service only
 * translates RPCs into these calls.
 */
export class StorageManager implements PutHost {
  private readonly router: ClassRouter;
  private readonly types = new Map<StorageTypeName, StorageType>();
  private readonly catalog = new Map<string, FlightVersion>();
  /** Visible versions per storage type, least recently used first (a Map keeps insertion order). */
  private readonly lru = new Map<StorageTypeName, Map<FlightVersion, true>>();
  /** Retired versions whose bytes wait for their last reader. */
  private readonly draining = new Set<FlightVersion>();
  private readonly sessions = new Set<PutSession>();
  private readonly clock: Clock;
  private readonly log: Logger;
  private versionIds = 0;

  constructor(options: ManagerOptions) {
    this.clock = options.clock;
    this.log = options.logger ?? silentLogger;
    const { config } = options;
    this.router = new ClassRouter(config.storageClasses);
    for (const name of ['memory', 'disk_mapped', 'disk'] as const) {
      const spec = config.storageTypes[name];
      if (spec) {
        this.types.set(name, new ByteBudget(name, spec.capacity));
        this.lru.set(name, new Map());
      }
    }
  }

  /** Normalises descriptor path segments or fails with INVALID_ARGUMENT. */
  static parsePath(parts: readonly string[]): { path: string; segments: string[] } {
    const result = normalizePath(parts);
    if (!result.ok) throw new InvalidArgumentError(result.reason);
    return { path: result.value, segments: result.segments };
  }

  routeClass(path: string, segments: readonly string[]): RoutedClass {
    return this.router.route(path, segments);
  }

  beginPut(parts: readonly string[], options: { sizeHint?: number } = {}): PutSession {
    const { path, segments } = StorageManager.parsePath(parts);
    const cls = this.router.route(path, segments);
    const tierIndex = 0;
    const tier = cls.config.tiers[tierIndex];
    const storage = tier && this.types.get(tier.storage);
    if (!tier || !storage) {
      throw new InvalidArgumentError(`class "${cls.config.name}" has no usable tier for flight "${path}"`);
    }
    const session = new PutSession(this, path, cls, tierIndex, tier, storage, options.sizeHint);
    this.sessions.add(session);
    return session;
  }

  /** Pins the current version of a flight for reading. NOT_FOUND when absent or expired. */
  open(parts: readonly string[]): FlightLease {
    const version = this.lookup(parts);
    version.pins++;
    version.lastAccess = this.clock.now();
    this.touch(version);
    let released = false;
    return {
      version,
      release: () => {
        if (released) return;
        released = true;
        this.unpin(version);
      },
    };
  }

  /** The current version without pinning it (for metadata calls). */
  lookup(parts: readonly string[]): FlightVersion {
    const { path } = StorageManager.parsePath(parts);
    const version = this.catalog.get(path);
    if (!version) throw new NotFoundError(`flight "${path}" not found`);
    if (version.isExpired(this.clock.now())) {
      this.retire(version, 'expire');
      throw new NotFoundError(`flight "${path}" not found (expired)`);
    }
    return version;
  }

  /** Visible, unexpired flights under a whole-segment prefix, in path order. */
  list(prefix = ''): FlightVersion[] {
    const norm = normalizePrefix(prefix);
    if (!norm.ok) throw new InvalidArgumentError(`ListFlights criteria: ${norm.reason}`);
    const now = this.clock.now();
    const out: FlightVersion[] = [];
    for (const version of [...this.catalog.values()]) {
      if (!isUnderPrefix(version.path, norm.value)) continue;
      if (version.isExpired(now)) this.retire(version, 'expire');
      else out.push(version);
    }
    return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }

  /** Removes a flight; returns whether it existed. */
  delete(parts: readonly string[]): boolean {
    const { path } = StorageManager.parsePath(parts);
    const version = this.catalog.get(path);
    if (!version) return false;
    this.retire(version, 'delete');
    return true;
  }

  /** Removes every flight under a whole-segment prefix; returns how many. */
  deletePrefix(prefix: string): number {
    const norm = normalizePrefix(prefix);
    if (!norm.ok) throw new InvalidArgumentError(`delete-prefix: ${norm.reason}`);
    let count = 0;
    for (const version of [...this.catalog.values()]) {
      if (isUnderPrefix(version.path, norm.value)) {
        this.retire(version, 'delete');
        count++;
      }
    }
    return count;
  }

  /** Retires every expired flight; the server calls it on a timer, tests call it directly. */
  sweepExpired(): number {
    const now = this.clock.now();
    let count = 0;
    for (const version of [...this.catalog.values()]) {
      if (version.isExpired(now)) {
        this.retire(version, 'expire');
        count++;
      }
    }
    return count;
  }

  stats(): ManagerStats {
    const storageTypes: ManagerStats['storageTypes'] = {};
    for (const [name, type] of this.types) {
      storageTypes[name] = { capacity: type.capacity, used: type.used, flights: 0, pinnedRetired: 0, reserved: 0 };
    }
    const classes: ManagerStats['classes'] = {};
    for (const cls of this.router.classes) classes[cls.config.name] = { prefix: cls.prefix, flights: 0, bytes: 0 };
    for (const version of this.catalog.values()) {
      const t = storageTypes[version.storage];
      if (t) t.flights++;
      const c = classes[version.cls.config.name];
      if (c) {
        c.flights++;
        c.bytes += version.heldBytes;
      }
    }
    for (const version of this.draining) {
      const t = storageTypes[version.storage];
      if (t) t.pinnedRetired += version.heldBytes;
    }
    for (const session of this.sessions) {
      const t = storageTypes[session.storage.name];
      if (t) t.reserved += session.reservedBytes;
    }
    return { storageTypes, classes, flights: this.catalog.size, putsInProgress: this.sessions.size };
  }

  /**
   * The accounting invariant, for tests: every storage type's used bytes equal what
   * its visible versions, draining versions and open uploads hold, within capacity.
   */
  checkAccounting(): void {
    for (const [name, s] of Object.entries(this.stats().storageTypes)) {
      let visible = 0;
      for (const v of this.catalog.values()) if (v.storage === name) visible += v.heldBytes;
      const expected = visible + s.pinnedRetired + s.reserved;
      if (s.used !== expected) throw new Error(`${name}: used ${s.used} != held ${expected}`);
      if (s.used > s.capacity) throw new Error(`${name}: used ${s.used} > capacity ${s.capacity}`);
    }
  }

  // ---- PutHost ----

  reserve(storage: StorageType, bytes: number, forPath: string): void {
    if (storage.tryReserve(bytes)) return;
    this.evictFor(storage, bytes);
    if (storage.tryReserve(bytes)) return;
    const s = this.stats().storageTypes[storage.name];
    throw new ResourceExhaustedError(
      `flight "${forPath}": ${storage.name} is full: ${formatSize(bytes)} more do not fit in ${formatSize(storage.capacity)} ` +
        `(${formatSize(storage.used)} used, of which ${formatSize((s?.pinnedRetired ?? 0) + (s?.reserved ?? 0))} ` +
        `held by readers and uploads in progress)`,
    );
  }

  release(storage: StorageType, bytes: number): void {
    storage.release(bytes);
  }

  publish(version: FlightVersion): void {
    const old = this.catalog.get(version.path);
    this.catalog.set(version.path, version);
    this.lru.get(version.storage)?.set(version, true);
    this.log.debug(
      { path: version.path, storage: version.storage, bytes: version.heldBytes, reason: 'put' },
      'flight stored',
    );
    if (old) this.retire(old, 'replace');
  }

  nextVersionId(): number {
    return ++this.versionIds;
  }

  now(): number {
    return this.clock.now();
  }

  sessionEnded(session: PutSession): void {
    this.sessions.delete(session);
  }

  // ---- internals ----

  /** Evicts least-recently-used, unpinned flights of a storage type until `bytes` fit. */
  private evictFor(storage: StorageType, bytes: number): void {
    const order = this.lru.get(storage.name);
    if (!order) return;
    // Iterating the live Map is safe while retire() deletes the current entry, and avoids
    // copying the whole LRU order on every reservation made under pressure.
    for (const version of order.keys()) {
      if (storage.used + bytes <= storage.capacity) return;
      if (version.pins > 0) continue;
      this.retire(version, 'evict');
    }
  }

  private touch(version: FlightVersion): void {
    const order = this.lru.get(version.storage);
    if (order?.delete(version)) order.set(version, true);
  }

  private retire(version: FlightVersion, reason: RemovalReason): void {
    if (version.retired) return;
    version.retired = reason;
    if (this.catalog.get(version.path) === version) this.catalog.delete(version.path);
    this.lru.get(version.storage)?.delete(version);
    this.log.debug(
      { path: version.path, storage: version.storage, bytes: version.heldBytes, reason },
      'flight removed',
    );
    if (version.pins === 0) this.free(version);
    else this.draining.add(version);
  }

  private unpin(version: FlightVersion): void {
    version.pins--;
    if (version.pins === 0 && version.retired) {
      this.draining.delete(version);
      this.free(version);
    }
  }

  private free(version: FlightVersion): void {
    this.types.get(version.storage)?.release(version.heldBytes);
  }
}
