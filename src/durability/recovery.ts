import { backoff } from '../core/backoff.js';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/log.js';
import { sleep } from '../core/sleep.js';
import type { DurableStore, ObjectInfo } from '../durable/durable-store.js';
import type { RoutedClass } from '../routing/router.js';
import type { Routes } from '../routing/routes.js';
import type { Catalog } from '../storage/catalog.js';
import type { UnrecoveredStores } from './unrecovered-stores.js';
import { FlightVersion } from '../storage/flight.js';
import type { Durability } from './durability.js';
import { readFlightObject } from './flight-object.js';

/** What recovery is built on. */
export interface RecoveryParts {
  stores: ReadonlyMap<string, DurableStore>;
  /** Removes objects a listing proves expired. */
  durability: Durability;
  /** Where found flights are adopted, and their manifests read. */
  catalog: Catalog;
  routes: Routes;
  /** The stores not recovered yet, kept up to date here. */
  unrecovered: UnrecoveredStores;
  clock: Clock;
  log: Logger;
  /** Manifests read at once by the background fill (`server.recoveryConcurrency`). */
  concurrency?: number;
}

/**
 * Finds the flights of durable classes in their stores after a start (DESIGN §2), so they
 * are listed and served (restored on first read). A store that cannot be reached does not
 * stop the start: its flights are found in the background, with backoff on the clock, once
 * it answers; until then it is `degraded` and lookups of its paths say UNAVAILABLE.
 */
export class Recovery {
  private closed = false;
  private filling: Promise<void> = Promise.resolve();
  private readonly stores: ReadonlyMap<string, DurableStore>;
  private readonly durability: Durability;
  private readonly catalog: Catalog;
  private readonly routes: Routes;
  private readonly unrecovered: UnrecoveredStores;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly concurrency: number;

  constructor(parts: RecoveryParts) {
    this.stores = parts.stores;
    this.durability = parts.durability;
    this.catalog = parts.catalog;
    this.routes = parts.routes;
    this.unrecovered = parts.unrecovered;
    this.clock = parts.clock;
    this.log = parts.log;
    this.concurrency = parts.concurrency ?? 16;
  }

  /**
   * Recovers every store the classes use, in real time (a start is not driven by a test
   * clock): a store that answers is recovered before the first call (waiting `waitMs` at
   * most for a slow listing), one that refuses fails at once, and one that has not answered
   * at all within `answerMs` (connections that hang) is not waited for: the classes that do
   * not use it serve, and its paths answer UNAVAILABLE naming it until it answers.
   */
  async start(waitMs: number, answerMs: number): Promise<void> {
    const stores = new Set(this.routes.classes.map((c) => c.config.durableStore).filter((s) => s !== undefined));
    for (const store of stores) this.unrecovered.add(store);
    const waitFor = async (store: string): Promise<void> => {
      let answered!: () => void;
      const answer = new Promise<void>((resolve) => (answered = resolve));
      const done = this.recoverStore(store, 0, answered);
      const spoke = await Promise.race([
        answer.then(() => true),
        done.then(() => true),
        sleep(answerMs).then(() => false),
      ]);
      if (!spoke) {
        this.log.warn(
          { store, waitedMs: answerMs },
          'durable store does not answer: serving without its flights (its paths answer UNAVAILABLE) until it does',
        );
        return;
      }
      await done;
    };
    await Promise.race([Promise.all([...stores].map(waitFor)), sleep(waitMs)]);
  }

  close(): void {
    this.closed = true;
  }

  /**
   * The flight at a normalised path as its class's durable store has it now (another node
   * put it there); undefined when the class keeps none, or it is not there or expired.
   */
  async find(path: string): Promise<FlightVersion | undefined> {
    const cls = this.routes.routeStored(path);
    const config = cls.config;
    const store = config.durableStore === undefined ? undefined : this.stores.get(config.durableStore);
    if (config.durability === 'none' || !store) return undefined;
    const key = config.durablePrefix + path;
    const object = await readFlightObject(store, key);
    if (!object || object.path !== path) return undefined;
    const version = FlightVersion.fromObject(object, cls);
    version.durable = { store, key, state: 'stored', object };
    return version.isExpired(this.clock.now()) ? undefined : version;
  }

  /** `answered`: called once the store has said anything (its first listing page, or an error). */
  private async recoverStore(store: string, attempt: number, answered?: () => void): Promise<void> {
    if (this.closed) return;
    const classes = this.routes.classes.filter((c) => c.config.durableStore === store);
    let versions: FlightVersion[];
    try {
      versions = await this.recover(classes, answered);
    } catch (err) {
      this.unrecovered.add(store);
      const retryMs = backoff(attempt);
      this.log.warn(
        { store, attempt, retryMs: Math.round(retryMs), err: (err as Error).message },
        'durable store unreachable: serving without its flights, recovering them in the background',
      );
      void this.clock.sleep(retryMs).then(() => this.recoverStore(store, attempt + 1));
      return;
    }
    for (const version of versions) this.catalog.adopt(version);
    this.unrecovered.delete(store);
    this.log.info(
      { store, flights: versions.length, attempt },
      'durable flights listed; their manifests are read on first use',
    );
    this.fillInBackground(store, versions);
  }

  /**
   * The durable flights a restarted server serves, from the stores' listings alone: every
   * object under the prefix of a durable class whose path (the key after the prefix) still
   * routes to that class becomes an unread version, its manifest read on first use or by
   * the background fill. Objects older than their class's TTL are expired for sure (a flight
   * is created no later than its object is written): they are removed at once, unread.
   */
  private async recover(classes: readonly RoutedClass[], answered?: () => void): Promise<FlightVersion[]> {
    const now = this.clock.now();
    const out: FlightVersion[] = [];
    // Listed into a list first: a store that fails half-way recovers nothing, and is retried.
    for (const cls of classes) {
      const config = cls.config;
      if (config.durability === 'none' || config.durableStore === undefined) continue;
      const store = this.stores.get(config.durableStore);
      if (!store) continue;
      for await (const info of store.list(config.durablePrefix)) {
        answered?.();
        const version = this.listed(cls, store, info);
        if (!version) continue;
        const ttl = config.ttl;
        if (ttl !== undefined && info.modifiedAt !== undefined && info.modifiedAt + ttl <= now) {
          this.durability.remove(version);
          continue;
        }
        out.push(version);
      }
      answered?.(); // an empty listing is an answer too
    }
    return out;
  }

  /** The unread version a listed object of a class stands for, or undefined when it is not one of its flights. */
  private listed(cls: RoutedClass, store: DurableStore, info: ObjectInfo): FlightVersion | undefined {
    const path = info.key.slice(cls.config.durablePrefix.length);
    let routed: RoutedClass;
    try {
      routed = this.routes.routeStored(path);
    } catch {
      this.log.warn({ key: info.key }, 'skipping an object whose key names no flight path');
      return undefined;
    }
    if (routed.config !== cls.config) return undefined; // another class's object under an overlapping prefix
    return FlightVersion.unread(path, routed, store, info);
  }

  /**
   * Reads the manifests of the unread versions a listing found, a few at once, so
   * ListFlights, expiry and the limits become exact soon after a start; stops at close.
   */
  private fillInBackground(store: string, versions: readonly FlightVersion[]): void {
    const started = performance.now();
    let next = 0;
    let read = 0;
    const worker = async (): Promise<void> => {
      while (!this.closed && next < versions.length) {
        const version = versions[next++] as FlightVersion;
        if (!version.unread || version.retired) continue;
        await this.catalog.materialize(version).then(
          () => read++,
          (err: unknown) =>
            this.log.warn({ store, path: version.path, err: (err as Error).message }, 'could not read a manifest'),
        );
      }
    };
    const workers = Array.from({ length: Math.min(this.concurrency, versions.length) }, worker);
    this.filling = Promise.all(workers).then(() => {
      if (versions.length > 0)
        this.log.info(
          { store, manifests: read, seconds: (performance.now() - started) / 1000 },
          'durable manifests read',
        );
    });
  }

  /**
   * Every object of every durable class's store, as the unread version it stands for (a
   * handover compares them with what this node holds, without reading any object).
   */
  async *listAll(): AsyncGenerator<FlightVersion> {
    for (const cls of this.routes.classes) {
      const config = cls.config;
      if (config.durability === 'none' || config.durableStore === undefined) continue;
      const store = this.stores.get(config.durableStore);
      if (!store) continue;
      for await (const info of store.list(config.durablePrefix)) {
        const version = this.listed(cls, store, info);
        if (version) yield version;
      }
    }
  }

  /** Resolves when the background fill of the last listing is done (tests, benchmarks). */
  filled(): Promise<void> {
    return this.filling;
  }
}
