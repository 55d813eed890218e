import type { Config, StorageTypeName } from '../config/schema.js';
import { InvalidArgumentError } from '../errors.js';
import { normalizePrefix, partitionOf, partitionsPrefix, type FlightPath } from '../core/path.js';
import { ClassRouter, relativeSegments, type RoutedClass } from '../routing/router.js';
import type { FlightVersion, VersionIdentity } from './flight.js';
import type { PutSession } from './put-session.js';
import { backfillFor, prefetchItems, type BulkItem } from './bulk.js';
import type { StorageType } from './storage-type.js';
import { countStats, tallyStats, type ManagerStats } from './stats.js';
import type { PlacementEvents } from './events.js';
import { buildStorageCore, type ManagerOptions, type StorageCore } from './core.js';
import type { FlightLease } from './leases.js';
import type { DurableStore } from '../durable/durable-store.js';
import type { LimitEnforcer } from '../limits/limit-enforcer.js';

export type { ManagerStats } from './stats.js';
export type { FlightLease } from './leases.js';
export type { ManagerOptions } from './core.js';

/**
 * How long a start waits for a durable store's listing: a store listed by then is
 * recovered before the first call; a larger one keeps listing while the server serves
 * (see Recovery). One that refuses (down, bad credentials) fails at once.
 */
const LIST_WAIT_MS = 5_000;
/**
 * A store that has not answered at all by then (connections that hang) is not waited for:
 * the classes that do not use it serve, and its own paths answer UNAVAILABLE naming it.
 */
const STORE_ANSWER_WAIT_MS = 3_000;
/** Manifests read at once for a listing of unread flights under a prefix. */
const MANIFESTS_AT_ONCE = 16;
/** Flights a listing takes from the catalog at a time. */
const LISTING_PAGE = 256;

/**
 * The one storage manager the Flight service talks to: a thin facade over the storage
 * core, which it builds in dependency order — first what everything uses (clock, log,
 * placement events, the classes in force, the byte ledger, durability, and the catalog of
 * visible flights with its limits), then the parts built on them (the tier mover, read
 * leases, put sessions, recovery), each given the few parts it calls. Every placement
 * decision is made in those parts — tier choice and spill on put, eviction (priority, then
 * LRU, across classes), evictionSpill, moveAfter, promoteAfter and expiry — and announced
 * on `events`. The service only translates RPCs into these calls.
 */
export class StorageManager {
  /** The parts the facade calls (storage/core.ts). */
  private readonly core: StorageCore;
  /** Every placement decision, as events for whoever subscribes (metrics, logs, ...). */
  readonly events: PlacementEvents;
  /** `server.ticketGrace`: how long a ticket is honoured after it was handed out. */
  private readonly ticketGrace: number;
  private readonly listWaitMs: number;

  constructor(options: ManagerOptions) {
    this.core = buildStorageCore(options);
    this.events = this.core.events;
    this.ticketGrace = options.config.server.ticketGrace;
    this.listWaitMs = options.listWaitMs ?? LIST_WAIT_MS;
  }

  /**
   * Prepares the storage types (disk tiers start empty) and finds the flights of durable
   * classes in their stores, so they are listed and served (restored on first read). A
   * store that cannot be reached does not stop the start: its classes' flights are found
   * in the background, with backoff, once it answers (see `degradedStores`).
   */
  async init(): Promise<void> {
    for (const type of this.core.ledger.types.values()) await type.init();
    // Spooled flights first: they are newer than any copy their store may still have.
    const spooled = await this.core.durability.recoverSpool(this.core.routes);
    for (const version of spooled) {
      this.core.catalog.publish(version);
      void this.core.durability.uploadSpooled(version).then(() => this.core.catalog.durableChanged(version));
    }
    if (spooled.length > 0)
      this.core.log.info({ flights: spooled.length }, 'uploading the flights spooled at the last shutdown');
    await this.core.recovery.start(this.listWaitMs, STORE_ANSWER_WAIT_MS);
  }

  /** Durable stores whose flights have not been recovered yet: they could not be reached. */
  get degradedStores(): string[] {
    return this.core.unrecovered.list;
  }

  /** The limit policies in force (replaced on reload). */
  get limits(): LimitEnforcer<FlightVersion> {
    return this.core.catalog.limits;
  }
  /**
   * Applies a reloaded config: new storage classes (routing, tiers) and limit policies, at
   * once. Every flight is routed again and counted against the new limits; nodes over an
   * `evict` limit are evicted down to it. What needs a restart (storage types, durable
   * stores, server settings) was refused before (`node/reload.ts`).
   */
  reconfigure(config: Config): void {
    const router = new ClassRouter(config.storageClasses);
    const moves: [FlightVersion, RoutedClass][] = [];
    for (const version of this.core.catalog.paths.values()) {
      moves.push([version, router.route(version.path, version.path.split('/'))]);
    }
    // Nothing above can fail half-way; from here on the swap is synchronous, so no
    // request sees a mix of old and new classes.
    this.core.routes.replace(router);
    this.core.catalog.reclass(moves);
    this.core.catalog.recount(config.limitPolicies);
    this.core.ledger.rescheduleMoves();
    this.core.log.info(
      { classes: config.storageClasses.length, policies: config.limitPolicies.length },
      'config reloaded',
    );
  }

  /** A spool opened after the start (a reload made a class weak); the first one stays. */
  useSpool(spool: DurableStore): void {
    this.core.durability.useSpool(spool);
  }

  /** Stops background durable work: waits up to `deadlineMs` for queued uploads. */
  async close(deadlineMs: number): Promise<void> {
    this.core.recovery.close();
    await this.core.background.idle();
    const drained = await this.core.durability.drain(deadlineMs);
    // Flights of a durable class still without a durable copy: weak uploads the grace did
    // not finish, and those a backfill has not reached.
    const unbacked = [...this.core.catalog.paths.values()].filter(
      (v) => v.placed && v.durable?.state !== 'stored' && v.cls.config.durability !== 'none',
    );
    if (!drained || unbacked.length > 0) {
      const spooled = await this.core.durability.spoolPending(unbacked);
      if (spooled > 0) this.core.log.info({ flights: spooled }, 'flights spooled; the next start uploads them');
    }
    this.core.durability.close();
    this.core.forgetLive();
  }

  get classes(): readonly RoutedClass[] {
    return this.core.routes.classes;
  }

  get storageTypes(): ReadonlyMap<StorageTypeName, StorageType> {
    return this.core.ledger.types;
  }

  /**
   * Starts a put. `identity`: the put is another node's copy of a version (a replica, a
   * handover), which keeps that version's tag and times.
   */
  async beginPut(
    path: FlightPath,
    options: { sizeHint?: number; owner?: string; identity?: VersionIdentity } = {},
  ): Promise<PutSession> {
    const cls = this.route(path);
    await this.materialize(path); // its first creation time carries over
    if (options.sizeHint !== undefined) {
      this.core.catalog.limits.checkDeclaredSize(cls.config.name, path, relativeSegments(cls, path), options.sizeHint);
    }
    return this.core.puts.begin(path, cls, options);
  }

  /** The class a flight path routes to, or INVALID_ARGUMENT as a put would get. */
  route(path: FlightPath): RoutedClass {
    return this.core.routes.route(path);
  }

  /**
   * Makes a flight another node put at `path` visible here, from the durable store they
   * share (cache-fill reservations across nodes); whether the path now has a flight.
   */
  async adoptFromStore(path: FlightPath): Promise<boolean> {
    const version = await this.core.recovery.find(path);
    if (version) this.core.catalog.adopt(version);
    return this.has(path);
  }

  /**
   * Brings the durable flights of the paths `owned` says this node owns in step with their
   * stores, from the stores' listings alone (a cluster's handover): a listed object this
   * node does not hold, or holds in another version, becomes an unread version, read on
   * first use. Versions are compared by the store's object version (ETag, or time and
   * size); a flight whose upload is still on its way stays. Returns how many changed.
   */
  async refreshFromStores(owned: (path: string, cls: RoutedClass) => boolean): Promise<number> {
    return this.core.recovery.refresh(owned);
  }

  /**
   * Lets go of this version of a path here, leaving any durable copy in its store: another
   * cluster node owns the path now and has it (or restores it). False if the path holds
   * another version by now.
   */
  handOver(path: string, tag: string): boolean {
    const version = this.core.catalog.get(path);
    if (!version || version.tag !== tag) return false;
    this.core.catalog.retire(version, 'handover');
    return true;
  }

  /**
   * Reads the manifest of the flight at a path if it is known only by its durable object
   * (listed at a start): what every caller that needs its schema, totals, tag or expiry
   * awaits first. One read, shared by concurrent callers; a no-op for other flights.
   */
  async materialize(path: FlightPath): Promise<void> {
    // A flight its store's listing has not reached yet is looked up in the store first.
    await this.core.recovery.lookup(path);
    await this.core.catalog.manifests.readPath(path);
  }

  /**
   * Visible, unexpired flights under a whole-segment prefix, in path order, for a listing
   * (ListFlights): flights a store's listing has not reached yet are listed from it first,
   * then the catalog is walked a page at a time, the manifests of unread flights on each
   * page read a few at once before it is yielded. Never holds the whole range.
   */
  async *listing(prefix: string): AsyncGenerator<FlightVersion> {
    const norm = normalizePrefix(prefix);
    if (!norm.ok) throw new InvalidArgumentError(`ListFlights criteria: ${norm.reason}`);
    await this.core.recovery.listUnder(norm.value);
    let after: string | undefined;
    for (;;) {
      const page = this.core.catalog.paths.page(norm.value, after, LISTING_PAGE);
      if (page.length === 0) return;
      after = (page[page.length - 1] as FlightVersion).path;
      await this.core.catalog.manifests.readAll(page, MANIFESTS_AT_ONCE);
      for (const { path } of page) {
        // As it is now: removed, replaced or expired while the manifests were read.
        const version = this.core.catalog.current(path);
        if (version && !version.unread) yield version;
      }
    }
  }

  /** Whether a visible, unexpired flight is at `path`, once its store was asked if need be (see `materialize`). */
  async known(path: FlightPath): Promise<boolean> {
    await this.materialize(path);
    return this.has(path);
  }

  /** Resolves when the manifests a start listed have been read in the background. */
  manifestsRead(): Promise<void> {
    return this.core.recovery.filled();
  }

  /** Whether a visible, unexpired flight is at `path` (no events, no expiry). */
  has(path: FlightPath): boolean {
    const version = this.core.catalog.get(path);
    return version !== undefined && !version.isExpired(this.core.clock.now());
  }

  /**
   * Pins the current copy of a flight for reading, restoring it from the durable store
   * first when only that copy is left. NOT_FOUND when absent, expired or replaced (`tag`).
   */
  async open(path: FlightPath, tag?: string): Promise<FlightLease> {
    await this.core.recovery.lookup(path);
    return this.core.leases.open(path, tag);
  }

  /** The current version without pinning it (for metadata calls); see Catalog.find. */
  lookup(path: FlightPath, tag?: string): FlightVersion {
    return this.core.catalog.find(path, tag);
  }

  /** Visible, unexpired flights under a whole-segment prefix, in path order. */
  list(prefix = ''): FlightVersion[] {
    return this.core.catalog.list(prefix);
  }

  /**
   * Removes a flight; returns whether it existed. While its store is still being listed,
   * call `materialize` first so a flight not listed yet is found (and its object removed);
   * either way the listing never brings it back.
   */
  delete(path: FlightPath): boolean {
    const version = this.core.catalog.get(path);
    if (version) this.core.recovery.noteRemoved(version);
    return this.core.catalog.delete(path);
  }

  /**
   * Removes every flight under a whole-segment prefix; returns how many. While a store is
   * still being listed, call `findUnder` first so flights not listed yet are found.
   */
  deletePrefix(prefix: string): number {
    const norm = normalizePrefix(prefix);
    if (!norm.ok) throw new InvalidArgumentError(`delete-prefix: ${norm.reason}`);
    if (this.core.unrecovered.any)
      for (const version of this.core.catalog.paths.range(norm.value)) this.core.recovery.noteRemoved(version);
    return this.core.catalog.deletePrefix(norm.value);
  }

  /** The stored partitions of a dataset (their paths: see core/path.ts `partitionPath`), as the catalog knows them. */
  storedPartitions(dataset: FlightPath): FlightPath[] {
    return [...this.core.catalog.paths.range(partitionsPrefix(dataset))].map((v) => v.path);
  }

  /** The stored partitions of every dataset at or under a normalised prefix (their current versions). */
  partitionsUnder(prefix: string): FlightVersion[] {
    return [...this.core.catalog.paths.range(prefix)].filter((v) => partitionOf(v.path) !== undefined);
  }

  /** Looks up in its store a flight the store's listing has not reached yet (no manifest read). */
  async locate(path: FlightPath): Promise<void> {
    await this.core.recovery.lookup(path);
  }

  /** Lists from their stores the flights under a prefix that a store's listing has not reached yet. */
  async findUnder(prefix: string): Promise<void> {
    const norm = normalizePrefix(prefix);
    if (!norm.ok) throw new InvalidArgumentError(`delete-prefix: ${norm.reason}`);
    await this.core.recovery.listUnder(norm.value);
  }

  /** Backfill items for a class: see bulk.ts `backfillFor`. */
  backfillItems(className: string, before = Number.POSITIVE_INFINITY): BulkItem[] {
    const now = this.core.clock.now();
    return backfillFor(this.core.routes.classes, this.core.catalog, className, before, now, this.core.durability);
  }

  /** Flights under a prefix whose only copy is durable, newest first, as prefetch items. */
  prefetchItems(prefix: string): BulkItem[] {
    const durableOnly = this.core.catalog.list(prefix).filter((v) => !v.placed && v.durable?.state === 'stored');
    return prefetchItems(durableOnly, this.core.leases);
  }

  /**
   * Tickets for `version` are being handed out (GetFlightInfo, ListFlights): until when
   * they are honoured, even if the path is replaced meanwhile (`server.ticketGrace`).
   */
  issueTickets(version: FlightVersion): number {
    return this.core.catalog.issueTickets(version, this.ticketGrace);
  }

  /**
   * RenewFlightEndpoint: the version a ticket names (current, or replaced but still kept
   * for its tickets) is honoured another `ticketGrace`; NOT_FOUND when it is gone.
   */
  async renewTickets(path: FlightPath, tag?: string): Promise<{ version: FlightVersion; until: number }> {
    await this.materialize(path);
    const version = this.lookup(path, tag);
    return { version, until: this.issueTickets(version) };
  }

  /** Pins a flight: never evicted or moved down (DESIGN §6 `pin`); NOT_FOUND when absent. */
  pin(path: FlightPath): FlightVersion {
    return this.core.catalog.pin(path);
  }

  /** Unpins a flight's path; whether it was pinned. */
  unpin(path: FlightPath): boolean {
    return this.core.catalog.unpin(path);
  }

  /** Retires every expired flight; returns how many. */
  sweepExpired(): number {
    return this.core.catalog.sweepExpired();
  }

  /**
   * The periodic housekeeping the server runs on a timer and tests run with a manual
   * clock: expiry, then moveAfter. Resolves when the moves it started are done.
   */
  async tick(): Promise<void> {
    this.core.catalog.sweepExpired();
    this.core.mover.moveDue();
    await this.core.background.idle();
  }

  /** Resolves when no move or promotion started in the background is still running. */
  idle(): Promise<void> {
    return this.core.background.idle();
  }

  /** A snapshot of everything observable: what `stats` answers and metrics read. */
  stats(): ManagerStats {
    return tallyStats({
      ledger: this.core.ledger,
      catalog: this.core.catalog,
      classes: this.core.routes.classes,
      putsInProgress: this.core.puts.inProgress,
      limits: this.core.catalog.limits,
      durability: this.core.durability.stats(),
      degraded: this.degradedStores,
    });
  }

  /**
   * The accounting invariant, for tests (see Ledger.check), and the stats tallies against
   * the same counted from every flight and copy.
   */
  checkAccounting(): void {
    this.core.ledger.check(this.core.catalog.paths.values());
    const counted = countStats({
      ledger: this.core.ledger,
      classes: this.core.routes.classes,
      versions: this.core.catalog.paths.values(),
      putsInProgress: this.core.puts.inProgress,
      limits: this.core.catalog.limits,
      durability: this.core.durability.stats(),
      degraded: this.degradedStores,
    });
    const tallied = this.stats();
    for (const key of ['storageTypes', 'classes', 'flights', 'pinned'] as const) {
      const [a, b] = [JSON.stringify(tallied[key]), JSON.stringify(counted[key])];
      if (a !== b) throw new Error(`stats ${key}: tallied ${a} != counted ${b}`);
    }
  }
}
