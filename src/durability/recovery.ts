import { retry } from '../core/retry.js';
import { ManifestFill } from './manifest-fill.js';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/log.js';
import { isUnderPrefix, storedPath, type FlightPath } from '../core/path.js';
import { sleep } from '../core/sleep.js';
import { DurableStoreError, type DurableStore, type ObjectInfo } from '../durable/durable-store.js';
import { UnavailableError } from '../errors.js';
import type { RoutedClass } from '../routing/router.js';
import type { Routes } from '../routing/routes.js';
import type { Catalog } from '../storage/catalog.js';
import { FlightVersion } from '../storage/flight.js';
import type { Durability } from './durability.js';
import { readFlightObject } from './flight-object.js';
import type { UnrecoveredStores } from './unrecovered-stores.js';

/** The store's version of a flight's durable object (ETag, or time and size), when known. */
function objectVersion(version: FlightVersion): string | undefined {
  return version.durable?.object?.version ?? version.durable?.listed?.version;
}

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
 * Finds the flights of durable classes in their stores after a start (DESIGN §2) by
 * listing them: each listed object becomes an unread version, adopted as its listing page
 * arrives, its manifest read on first use or by the background fill. A start waits for a
 * store's listing a few seconds at most: a larger store keeps listing while the server
 * serves, and until it is done a path not known here is looked up in its store directly
 * (one object: the key names the path), a prefix listed from it, and a delete remembered so
 * the listing never brings the flight back. A store that cannot be reached does not stop
 * the start: its flights are found in the background, with backoff on the clock, once it
 * answers; until then it is degraded and lookups of its paths say UNAVAILABLE.
 */
export class Recovery {
  private closed = false;
  private readonly stores: ReadonlyMap<string, DurableStore>;
  private readonly durability: Durability;
  private readonly catalog: Catalog;
  private readonly routes: Routes;
  private readonly unrecovered: UnrecoveredStores;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly fill: ManifestFill;
  /** Listings in progress (first attempts and retries), by store. */
  private readonly listings = new Map<string, Promise<void>>();
  /** Direct lookups of paths the listings have not reached, shared by concurrent callers. */
  private readonly lookups = new Map<string, Promise<void>>();
  /**
   * The objects (by path, their store versions) of flights deleted while some store was not
   * recovered: a listing that still finds one of them (its removal on its way) does not
   * bring the flight back.
   */
  private readonly removed = new Map<string, Set<string>>();

  constructor(parts: RecoveryParts) {
    this.stores = parts.stores;
    this.durability = parts.durability;
    this.catalog = parts.catalog;
    this.routes = parts.routes;
    this.unrecovered = parts.unrecovered;
    this.clock = parts.clock;
    this.log = parts.log;
    this.fill = new ManifestFill(parts.catalog, parts.log, parts.concurrency ?? 16);
  }

  /**
   * Recovers every store the classes use, in real time (a start is not driven by a test
   * clock). A store whose listing ends within `listMs` is recovered before the first call;
   * one that answers but lists longer keeps listing while the server serves; one that
   * refuses fails at once; and one that has not answered at all within `answerMs`
   * (connections that hang) is not waited for: its paths answer UNAVAILABLE naming it
   * until it answers.
   */
  async start(listMs: number, answerMs: number): Promise<void> {
    const stores = new Set(this.routes.classes.map((c) => c.config.durableStore).filter((s) => s !== undefined));
    for (const store of stores) this.unrecovered.unreachable(store);
    const waitFor = async (store: string): Promise<void> => {
      let answered!: () => void;
      const answer = new Promise<void>((resolve) => (answered = resolve));
      const done = this.recoverStore(store, answered);
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
      const listed = await Promise.race([done.then(() => true), sleep(listMs).then(() => false)]);
      if (!listed)
        this.log.info(
          { store, waitedMs: listMs },
          'serving while the durable store is still listed: its paths not listed yet are looked up in it directly',
        );
    };
    await Promise.all([...stores].map(waitFor));
  }

  close(): void {
    this.closed = true;
    this.fill.close();
  }

  /**
   * Makes the flight at a normalised path known here if its store's listing has not
   * reached it yet: the store is asked for that one object. UNAVAILABLE when the store
   * cannot answer; a no-op when the path is known or its store is recovered.
   */
  async lookup(path: FlightPath): Promise<void> {
    if (this.catalog.get(path) || this.unrecovered.stateOf(path)?.state !== 'listing') return;
    let pending = this.lookups.get(path);
    if (!pending) {
      pending = this.lookupNow(path).finally(() => this.lookups.delete(path));
      this.lookups.set(path, pending);
    }
    await pending;
  }

  private async lookupNow(path: FlightPath): Promise<void> {
    let version: FlightVersion | undefined;
    try {
      version = await this.find(path);
    } catch (err) {
      if (err instanceof DurableStoreError && err.kind === 'transient')
        throw new UnavailableError(`flight "${path}": durable store "${err.store}" cannot be read: ${err.message}`);
      throw err;
    }
    if (version && !this.wasRemoved(version)) this.catalog.adopt(version);
  }

  /**
   * Makes every flight under a normalised whole-segment prefix known here while some
   * store's listing is in progress: lists the prefix in those stores (the whole listing,
   * for the empty prefix). UNAVAILABLE when a store cannot answer.
   */
  async listUnder(prefix: string): Promise<void> {
    const stores = new Set(this.unrecovered.listed);
    if (stores.size === 0) return;
    if (prefix === '') {
      await Promise.all([...stores].map((store) => this.listings.get(store)));
      return;
    }
    for (const cls of this.routes.classes) {
      const config = cls.config;
      const store = config.durableStore === undefined ? undefined : this.stores.get(config.durableStore);
      if (!store || config.durability === 'none' || !stores.has(store.id)) continue;
      // Only classes whose paths can lie under the prefix.
      if (!isUnderPrefix(cls.prefix, prefix) && !isUnderPrefix(prefix, cls.prefix)) continue;
      try {
        for await (const info of store.list(config.durablePrefix + prefix)) {
          const version = this.listed(cls, store, info);
          if (version && isUnderPrefix(version.path, prefix)) this.adoptListed(version);
        }
      } catch (err) {
        throw new UnavailableError(
          `flights under "${prefix}": durable store "${store.id}" cannot be listed: ${(err as Error).message}`,
        );
      }
    }
  }

  /**
   * A flight is being deleted: while some store is not recovered, a listing that still
   * finds its object does not bring it back.
   */
  noteRemoved(version: FlightVersion): void {
    if (!this.unrecovered.any) {
      this.removed.clear();
      return;
    }
    const object = objectVersion(version);
    if (object === undefined) return;
    let objects = this.removed.get(version.path);
    if (!objects) this.removed.set(version.path, (objects = new Set()));
    objects.add(object);
  }

  /** Whether a version found in a store is the object of a flight deleted since (see noteRemoved). */
  private wasRemoved(version: FlightVersion): boolean {
    const object = objectVersion(version);
    return object !== undefined && (this.removed.get(version.path)?.has(object) ?? false);
  }

  /**
   * The flight at a normalised path as its class's durable store has it now (another node
   * put it there); undefined when the class keeps none, or it is not there or expired.
   */
  async find(path: FlightPath): Promise<FlightVersion | undefined> {
    const cls = this.routes.route(path);
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

  /**
   * Lists one store, adopting what it lists; retried with backoff on the clock while it
   * fails (each attempt is the store's listing in progress). Resolves once the first
   * attempt has ended, listed or not.
   */
  private recoverStore(store: string, answered?: () => void): Promise<void> {
    let first: Promise<void> | undefined;
    const attempt = (n: number): Promise<void> => {
      const listing = this.listStore(store, n, n === 0 ? answered : undefined);
      const settled = listing.then(
        () => undefined,
        () => undefined,
      );
      this.listings.set(store, settled);
      void settled.finally(() => {
        if (this.listings.get(store) === settled) this.listings.delete(store);
      });
      first ??= settled;
      return listing;
    };
    void retry(attempt, {
      clock: this.clock,
      retryable: () => !this.closed,
      onRetry: (err, n, retryMs) =>
        this.log.warn(
          { store, attempt: n, retryMs: Math.round(retryMs), err: (err as Error).message },
          'durable store unreachable: serving without its flights, recovering them in the background',
        ),
    }).catch(() => undefined);
    return first ?? Promise.resolve();
  }

  /** `answered`: called once the store has said anything (its first listing page, or an error). */
  private async listStore(store: string, attempt: number, answered?: () => void): Promise<void> {
    if (this.closed) return;
    const classes = this.routes.classes.filter((c) => c.config.durableStore === store);
    let count = 0;
    let said = false;
    this.fill.listingStarted();
    try {
      count = await this.recover(classes, () => {
        if (said) return;
        said = true;
        this.unrecovered.listing(store);
        answered?.();
      });
    } catch (err) {
      answered?.();
      this.unrecovered.unreachable(store);
      throw err;
    } finally {
      this.fill.listingEnded();
    }
    this.unrecovered.recovered(store);
    if (!this.unrecovered.any) this.removed.clear();
    this.log.info({ store, flights: count, attempt }, 'durable flights listed; their manifests are read on first use');
  }

  /**
   * Lists the stores of `classes`, adopting as the pages arrive: every object under the
   * prefix of a durable class whose path (the key after the prefix) still routes to that
   * class becomes an unread version. Objects older than their class's TTL are expired for
   * sure (a flight is created no later than its object is written): removed at once,
   * unread. Returns how many were adopted; throws when the store fails (what was adopted
   * stays, and a retry lists again).
   */
  private async recover(classes: readonly RoutedClass[], answered: () => void): Promise<number> {
    let count = 0;
    for (const cls of classes) {
      const config = cls.config;
      if (config.durability === 'none' || config.durableStore === undefined) continue;
      const store = this.stores.get(config.durableStore);
      if (!store) continue;
      for await (const info of store.list(config.durablePrefix)) {
        answered();
        const version = this.listed(cls, store, info);
        if (version && this.adoptListed(version)) count++;
      }
      answered(); // an empty listing is an answer too
    }
    return count;
  }

  /** Adopts a listed version unless it expired, was deleted since, or is already known; queues its manifest. */
  private adoptListed(version: FlightVersion): boolean {
    const listed = version.durable?.listed;
    const ttl = version.cls.config.ttl;
    if (ttl !== undefined && listed?.modifiedAt !== undefined && listed.modifiedAt + ttl <= this.clock.now()) {
      this.durability.remove(version);
      return false;
    }
    if (this.wasRemoved(version)) return false;
    if (!this.catalog.adopt(version)) return false;
    this.fill.push(version);
    return true;
  }

  /** The unread version a listed object of a class stands for, or undefined when it is not one of its flights. */
  private listed(cls: RoutedClass, store: DurableStore, info: ObjectInfo): FlightVersion | undefined {
    let path: FlightPath;
    let routed: RoutedClass;
    try {
      path = storedPath(info.key.slice(cls.config.durablePrefix.length));
      routed = this.routes.route(path);
    } catch {
      this.log.warn({ key: info.key }, 'skipping an object whose key names no flight path');
      return undefined;
    }
    if (routed.config !== cls.config) return undefined; // another class's object under an overlapping prefix
    return FlightVersion.unread(path, routed, store, info);
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

  /**
   * Brings the durable flights of the paths `owned` says this node owns in step with their
   * stores, from the stores' listings alone (a cluster's handover): a listed object this
   * node does not hold, or holds in another version, becomes an unread version, read on
   * first use. Versions are compared by the store's object version (ETag, or time and
   * size); a flight whose upload is still on its way stays. Returns how many changed.
   */
  async refresh(owned: (path: string, cls: RoutedClass) => boolean): Promise<number> {
    let changed = 0;
    for await (const listed of this.listAll()) {
      if (!owned(listed.path, listed.cls)) continue;
      const held = this.catalog.get(listed.path);
      const info = listed.durable?.listed;
      if (held && held.durable?.state !== 'stored') continue; // its own upload is on the way
      const known = held?.durable?.object?.version ?? held?.durable?.listed?.version;
      if (held && known !== undefined && known === info?.version) continue;
      if (held && known === undefined && (info?.modifiedAt ?? 0) <= held.createdAt) {
        // Written before this node's version was: the same object, as far as can be told.
        if (held.durable) held.durable.listed = info;
        this.catalog.durableChanged(held);
        continue;
      }
      this.catalog.adopt(listed);
      changed++;
    }
    return changed;
  }

  /** Resolves when the listings are done and the manifests they found are read (tests, benchmarks). */
  filled(): Promise<void> {
    return this.fill.done();
  }
}
