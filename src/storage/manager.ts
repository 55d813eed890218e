import type { Config, StorageTypeName, TierConfig } from '../config/schema.js';
import { InvalidArgumentError, NotFoundError, UnavailableError } from '../errors.js';
import { isUnderPrefix, normalizePath, normalizePrefix } from '../core/path.js';
import { ClassRouter, type RoutedClass } from '../routing/router.js';
import type { Clock } from '../core/clock.js';
import { silentLogger, type Logger } from '../core/log.js';
import { EvictionOrder } from './eviction-order.js';
import { TierMover } from './tier-mover.js';
import { FlightVersion, Placed, type DurableCopy, type RemovalReason } from './flight.js';
import { PutSession, type Charge, type PutHost } from './put-session.js';
import type { Frame, Placement, StorageType } from './storage-type.js';
import { createStorageTypes } from './types/index.js';
import { checkAccounting, computeStats, type ManagerStats } from './stats.js';
import { PlacementEvents, type PlacementEvent } from './events.js';
import type { DurableStore } from '../durable/durable-store.js';
import { readFlightObjectMessages } from '../durable/flight-object.js';
import { backoff } from '../core/backoff.js';
import { Durability, type DurabilityHost } from './durability.js';
import { DurableSink } from './durable-sink.js';
import { LimitEnforcer, type LimitHost } from '../limits/limit-enforcer.js';
import type { LimitPolicyConfig } from '../config/schema.js';
import type { BufferPool } from '../core/buffer-pool.js';
import { sleep } from '../core/sleep.js';

export type { ManagerStats } from './stats.js';

/**
 * How long a start waits for durable stores to list their flights before serving without
 * them: a store that answers is recovered before the first call, one that refuses (down,
 * bad credentials) fails at once, and one that hangs holds the start up this long at most.
 */
const INITIAL_RECOVERY_WAIT_MS = 30_000;

export interface ManagerOptions {
  config: Config;
  clock: Clock;
  logger?: Logger;
  /** Where placement events go; subscribe to it (the manager makes one when not given). */
  events?: PlacementEvents;
  /** Durable stores by id (created from `durableStores` by the app). */
  durableStores?: ReadonlyMap<string, DurableStore>;
  /** Where weak flights not uploaded by shutdown wait for the next start (`server.spool`). */
  spool?: DurableStore;
}

/** A pinned copy handed to a reader; `release` exactly once when done. */
export interface FlightLease {
  readonly version: FlightVersion;
  /** The tier copy being read; undefined when the flight is served from its durable store. */
  /** The messages at the given indices, ready to send (see Placement.read for `pool`). */
  read(indices: readonly number[], pool?: BufferPool): AsyncIterable<Frame>;
  release(): void;
}

/**
 * The one storage manager the Flight service talks to. It owns the catalog of visible
 * flights and where each one lives, every storage type's accounting, and every placement
 * decision: tier choice and spill on put, eviction (priority, then LRU, across classes),
 * evictionSpill, moveAfter, promoteAfter and expiry. The service only translates RPCs
 * into these calls.
 */
export class StorageManager implements PutHost, DurabilityHost, LimitHost<FlightVersion> {
  private router: ClassRouter;
  private readonly types: Map<StorageTypeName, StorageType>;
  private readonly catalog = new Map<string, FlightVersion>();
  private readonly order = new Map<StorageTypeName, EvictionOrder>();
  /** Every copy whose bytes are still charged: current ones and retired ones being read. */
  private readonly resident = new Set<Placed>();
  /** Charges of writers that have not finished (puts, spills, moves). */
  private readonly charges = new Set<Charge>();
  private readonly sessions = new Set<PutSession>();
  /** Moves and promotions started in the background. */
  private readonly background = new Set<Promise<unknown>>();
  private readonly clock: Clock;
  private readonly log: Logger;
  /** Every placement decision, as events for whoever subscribes (metrics, logs, ...). */
  readonly events: PlacementEvents;
  private versionIds = 0;
  /** Durable stores whose flights are still to be recovered (retried on the clock until they answer). */
  private readonly unrecovered = new Set<string>();
  private closed = false;
  private readonly mover: TierMover;
  readonly durability: Durability;
  limits: LimitEnforcer<FlightVersion>;

  constructor(options: ManagerOptions) {
    this.clock = options.clock;
    this.log = options.logger ?? silentLogger;
    this.events =
      options.events ??
      new PlacementEvents((err, event) =>
        this.log.error({ err, event: event.type }, 'a placement event subscriber failed'),
      );
    const { config } = options;
    this.router = new ClassRouter(config.storageClasses);
    this.types = createStorageTypes(config.storageTypes);
    this.durability = new Durability(options.durableStores ?? new Map(), this, this.clock, this.log, options.spool);
    this.limits = new LimitEnforcer(config.limitPolicies, this);
    this.mover = new TierMover({
      log: this.log,
      order: (storage) => this.order.get(storage),
      storageType: (tier) => this.storageType(tier),
      openCharge: (storage) => this.openCharge(storage),
      closeCharge: (charge) => this.closeCharge(charge),
      unchargeBytes: (charge, bytes) => this.unchargeBytes(charge, bytes),
      abandonCharge: (charge) => {
        if (!this.charges.has(charge)) return;
        this.unchargeBytes(charge, charge.bytes);
        this.charges.delete(charge);
      },
      place: (version, placement, tier) => this.place(version, placement, tier),
      retire: (version, reason) => this.retire(version, reason),
      retirePlaced: (placed, reason) => this.retirePlaced(placed, reason),
      unpin: (placed) => this.unpin(placed),
      inBackground: (work) => this.inBackground(work),
      limits: () => this.limits,
      emit: (event) => this.emit(event),
    });
    for (const name of this.types.keys()) this.order.set(name, new EvictionOrder());
  }

  /**
   * Prepares the storage types (disk tiers start empty) and finds the flights of durable
   * classes in their stores, so they are listed and served (restored on first read). A
   * store that cannot be reached does not stop the start: its classes' flights are found
   * in the background, with backoff, once it answers (see `degradedStores`).
   */
  async init(): Promise<void> {
    for (const type of this.types.values()) await type.init();
    // Spooled flights first: they are newer than any copy their store may still have.
    const spooled = await this.durability.recoverSpool(
      (path) => this.routeNormalised(path),
      () => this.nextVersionId(),
    );
    for (const version of spooled) {
      this.catalog.set(version.path, version);
      this.limits.add(version, relativeSegments(version.cls, version.path), false);
      this.durability.uploadSpooled(version);
    }
    if (spooled.length > 0)
      this.log.info({ flights: spooled.length }, 'uploading weak flights spooled at the last shutdown');
    const stores = new Set(this.router.classes.map((c) => c.config.durableStore).filter((s) => s !== undefined));
    for (const store of stores) this.unrecovered.add(store);
    // A store that hangs rather than refuses must not hold the start up either.
    const recovering = Promise.all([...stores].map((store) => this.recoverStore(store, 0)));
    await Promise.race([recovering, sleep(INITIAL_RECOVERY_WAIT_MS)]);
  }

  /** The class of a path read back from a store or the spool, which must be normalised. */
  private routeNormalised(path: string): RoutedClass {
    const parsed = StorageManager.parsePath([path]);
    if (parsed.path !== path) throw new InvalidArgumentError(`"${path}" is not a normalised flight path`);
    return this.router.route(parsed.path, parsed.segments);
  }

  /** The durable store of the class a path routes to, if any. */
  private durableStoreOf(path: string): string | undefined {
    try {
      return this.router.route(path, path.split('/')).config.durableStore;
    } catch {
      return undefined; // routes to no class: not found, as before
    }
  }

  /** Durable stores whose flights have not been recovered yet: they could not be reached. */
  get degradedStores(): string[] {
    return [...this.unrecovered];
  }

  private async recoverStore(store: string, attempt: number): Promise<void> {
    if (this.closed) return;
    const classes = this.router.classes.filter((c) => c.config.durableStore === store);
    let versions: FlightVersion[];
    try {
      versions = await this.durability.recover(
        classes,
        (path) => this.routeNormalised(path),
        () => this.nextVersionId(),
      );
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
    for (const version of versions) {
      const existing = this.catalog.get(version.path);
      if (existing && existing.createdAt >= version.createdAt) continue; // put while the store was down
      if (existing) this.retire(existing, 'replace');
      this.catalog.set(version.path, version);
      this.limits.add(version, relativeSegments(version.cls, version.path), false);
    }
    this.unrecovered.delete(store);
    this.log.info({ store, flights: versions.length, attempt }, 'durable flights recovered');
  }

  /**
   * Applies a reloaded config: new storage classes (routing, tiers) and limit policies, at
   * once. Every flight is routed again and counted against the new limits; nodes over an
   * `evict` limit are evicted down to it. Storage types, durable stores and server
   * settings need a restart: a reload that changes them is refused and nothing changes.
   */
  reconfigure(config: Config, current: Config): void {
    const restartOnly = (['storageTypes', 'durableStores', 'server'] as const).filter(
      (key) => JSON.stringify(config[key]) !== JSON.stringify(current[key]),
    );
    if (restartOnly.length > 0) {
      throw new InvalidArgumentError(`changing ${restartOnly.join(', ')} needs a restart; the running config is kept`);
    }
    const router = new ClassRouter(config.storageClasses);
    const moves: [FlightVersion, RoutedClass][] = [];
    for (const version of this.catalog.values()) {
      moves.push([version, router.route(version.path, version.path.split('/'))]);
    }
    // Nothing above can fail half-way; from here on the swap is synchronous, so no
    // request sees a mix of old and new classes.
    this.router = router;
    for (const [version, cls] of moves) this.reclass(version, cls);
    this.limits = new LimitEnforcer(config.limitPolicies, this);
    // Least recently read first, as the limits' eviction order expects.
    for (const version of [...this.catalog.values()].sort((a, b) => a.lastAccess - b.lastAccess)) {
      this.limits.add(version, relativeSegments(version.cls, version.path), version.placed !== undefined);
    }
    this.limits.enforceAll();
    this.log.info({ classes: config.storageClasses.length, policies: config.limitPolicies.length }, 'config reloaded');
  }

  /** Moves a flight to its class's new definition, keeping its copy in the tier of the same storage type. */
  private reclass(version: FlightVersion, cls: RoutedClass): void {
    version.cls = cls;
    const placed = version.placed;
    if (!placed) return;
    const tier = cls.config.tiers.findIndex((t) => t.storage === placed.storage);
    const order = this.order.get(placed.storage);
    order?.remove(placed);
    placed.tierIndex = tier >= 0 ? tier : placed.tierIndex;
    order?.add(placed, cls.config.tiers[placed.tierIndex]?.priority ?? 0);
  }

  /** Stops background durable work: waits up to `deadlineMs` for queued uploads. */
  async close(deadlineMs: number): Promise<void> {
    this.closed = true;
    await this.idle();
    if (!(await this.durability.drain(deadlineMs))) {
      const spooled = await this.durability.spoolPending();
      if (spooled > 0) this.log.info({ flights: spooled }, 'weak flights spooled; the next start uploads them');
    }
    this.durability.close();
  }

  get classes(): readonly RoutedClass[] {
    return this.router.classes;
  }

  get storageTypes(): ReadonlyMap<StorageTypeName, StorageType> {
    return this.types;
  }

  /** Normalises descriptor path segments or fails with INVALID_ARGUMENT. */
  static parsePath(parts: readonly string[]): { path: string; segments: string[] } {
    const result = normalizePath(parts);
    if (!result.ok) throw new InvalidArgumentError(result.reason);
    return { path: result.value, segments: result.segments };
  }

  async beginPut(parts: readonly string[], options: { sizeHint?: number } = {}): Promise<PutSession> {
    const { path, segments } = StorageManager.parsePath(parts);
    const cls = this.router.route(path, segments);
    if (options.sizeHint !== undefined) {
      this.limits.checkDeclaredSize(cls.config.name, path, relativeSegments(cls, path), options.sizeHint);
    }
    const session = await PutSession.begin(this, path, cls, options.sizeHint);
    this.sessions.add(session);
    return session;
  }

  /**
   * Pins the current copy of a flight for reading, restoring it from the durable store
   * first when only that copy is left (concurrent readers share one restore). NOT_FOUND
   * when absent or expired.
   */
  async open(parts: readonly string[], tag?: string): Promise<FlightLease> {
    let version = this.lookup(parts, tag);
    while (!version.placed) {
      const object = version.durable?.object;
      if (object && !this.fitsSomeTier(version, object.size)) return this.serveFromStore(version);
      // A full `reject` limit on tier copies: read it from the store rather than restore it.
      if (
        object &&
        !version.restoring &&
        !this.limits.admitTierCopy(version, relativeSegments(version.cls, version.path))
      ) {
        return this.serveFromStore(version);
      }
      version.restoring ??= this.mover.restore(version).finally(() => (version.restoring = undefined));
      await version.restoring;
      version = this.lookup(parts, tag);
    }
    if (!(await this.intact(version))) return this.open(parts, tag);
    const placed = version.placed;
    if (!placed) return this.open(parts, tag); // evicted while checking
    placed.pins++;
    const now = this.clock.now();
    version.lastAccess = now;
    this.limits.touch(version);
    this.order.get(placed.storage)?.touch(placed);
    this.emit({ type: 'hit', version, storage: placed.storage, tier: placed.tierIndex });
    this.mover.considerPromotion(version, now);
    let released = false;
    return {
      version,
      read: (indices, pool) => placed.placement.read(indices, pool),
      release: () => {
        if (released) return;
        released = true;
        this.unpin(placed);
      },
    };
  }

  /**
   * Whether the current tier copy is still there. One that vanished (its file deleted
   * behind the server's back) is dropped with an error log: the flight then lives on in its
   * durable copy, if it has one, and is gone from the catalog otherwise.
   */
  private async intact(version: FlightVersion): Promise<boolean> {
    const placed = version.placed;
    if (!placed?.placement.intact || (await placed.placement.intact())) return true;
    if (version.placed !== placed || version.retired) return false; // changed meanwhile: look again
    const durable = version.durable?.state === 'stored';
    this.log.error(
      { path: version.path, storage: placed.storage, durable },
      durable
        ? 'a tier copy vanished from under the server; serving the flight from its durable copy'
        : 'a tier copy vanished from under the server and there is no durable copy; the flight is lost',
    );
    if (durable) {
      version.placed = undefined;
      this.retirePlaced(placed, 'evict');
      this.limits.dropTierCopy(version);
    } else {
      this.retire(version, 'evict');
    }
    return false;
  }

  /** A flight larger than every tier of its class is read straight from its durable object. */
  private serveFromStore(version: FlightVersion): FlightLease {
    const { store, object } = version.durable as Required<DurableCopy>;
    version.lastAccess = this.clock.now();
    this.limits.touch(version);
    this.emit({ type: 'hit', version, storage: 'durable', tier: -1 });
    return {
      version,
      read: (indices) => readFlightObjectMessages(store, object, indices),
      release: () => undefined,
    };
  }

  /** Whether a flight of `bytes` could be placed in some tier of its class (sizes, not room). */
  private fitsSomeTier(version: FlightVersion, bytes: number): boolean {
    return version.cls.config.tiers.some(
      (t) => (t.maxFlightSize === undefined || bytes <= t.maxFlightSize) && bytes <= this.storageType(t).capacity,
    );
  }

  /**
   * The current version without pinning it (for metadata calls). With `tag` (from a
   * ticket), NOT_FOUND unless the current version is that one: a ticket never reads
   * another version than the one GetFlightInfo described.
   */
  lookup(parts: readonly string[], tag?: string): FlightVersion {
    const { path } = StorageManager.parsePath(parts);
    const version = this.catalog.get(path);
    if (!version) {
      const store = this.unrecovered.size > 0 ? this.durableStoreOf(path) : undefined;
      if (store !== undefined && this.unrecovered.has(store)) {
        throw new UnavailableError(
          `flight "${path}" is not in the tiers, and durable store "${store}" cannot be reached yet to look for it`,
        );
      }
      this.emit({ type: 'miss', path });
      throw new NotFoundError(`flight "${path}" not found`);
    }
    if (version.isExpired(this.clock.now())) {
      this.retire(version, 'expire');
      this.emit({ type: 'miss', path });
      throw new NotFoundError(`flight "${path}" not found (expired)`);
    }
    if (tag !== undefined && version.tag !== tag) {
      throw new NotFoundError(
        `flight "${path}" was replaced after this ticket was issued (ticket version ${tag}, ` +
          `current version ${version.tag}): call GetFlightInfo again for new tickets`,
      );
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

  /** Retires every expired flight, from whichever tier holds it. */
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

  /**
   * The periodic housekeeping the server runs on a timer and tests run with a manual
   * clock: expiry, then moveAfter. Resolves when the moves it started are done.
   */
  async tick(): Promise<void> {
    this.sweepExpired();
    const now = this.clock.now();
    for (const version of [...this.catalog.values()]) {
      const placed = version.placed;
      if (!placed || version.relocating) continue;
      const tier = version.cls.config.tiers[placed.tierIndex];
      const next = placed.tierIndex + 1;
      if (tier?.moveAfter === undefined || next >= version.cls.config.tiers.length) continue;
      if (now - version.lastAccess >= tier.moveAfter) this.inBackground(this.mover.relocate(version, next, 'move'));
    }
    await this.idle();
  }

  /** Resolves when no move or promotion started in the background is still running. */
  async idle(): Promise<void> {
    while (this.background.size > 0) await Promise.allSettled([...this.background]);
  }

  /** A snapshot of everything observable: what `stats` answers and metrics read. */
  stats(): ManagerStats {
    const stores = new Set(this.router.classes.map((c) => c.config.durableStore).filter((s) => s !== undefined));
    return {
      ...computeStats(
        this.types,
        this.router.classes,
        this.catalog.values(),
        this.resident,
        this.charges,
        this.sessions.size,
      ),
      limits: [...this.limits.tree.all()].map((n) => ({
        policy: n.policy.name,
        type: n.policy.type,
        node: n.key || '/',
        source: n.source,
        limit: n.limit,
        used: n.used,
      })),
      durability: { ...this.durability.stats(), stores: [...stores], degraded: this.degradedStores },
    };
  }

  /**
   * The accounting invariant, for tests: every storage type's used bytes equal what its
   * copies (current, or retired but still read) and unfinished writers hold, within capacity.
   */
  checkAccounting(): void {
    checkAccounting(this.types, this.resident, this.charges, this.catalog.values());
  }

  // ---- PutHost ----

  storageType(tier: TierConfig): StorageType {
    const type = this.types.get(tier.storage);
    if (!type) throw new InvalidArgumentError(`storage type ${tier.storage} is not configured`);
    return type;
  }

  openCharge(storage: StorageType): Charge {
    const charge = { storage, bytes: 0 };
    this.charges.add(charge);
    return charge;
  }

  /** Ends a charge; whatever it still holds now belongs to a placement (or was released). */
  closeCharge(charge: Charge): void {
    charge.bytes = 0;
    this.charges.delete(charge);
  }

  /**
   * Charges bytes, evicting lower-priority then least-recently-used copies of the storage
   * type until they fit (see TierMover).
   */
  chargeBytes(charge: Charge, bytes: number, forPath: string): Promise<void> {
    return this.mover.chargeBytes(charge, bytes, forPath);
  }

  unchargeBytes(charge: Charge, bytes: number): void {
    if (bytes === 0) return;
    if (bytes < 0 || bytes > charge.bytes) throw new Error(`releasing ${bytes} of a ${charge.bytes}-byte charge`);
    charge.bytes -= bytes;
    charge.storage.uncharge(bytes);
  }

  durableSinkFor(cls: RoutedClass, path: string, evenIfWeak = false): DurableSink | undefined {
    if (cls.config.durability !== 'strong' && !(evenIfWeak && cls.config.durability === 'weak')) return undefined;
    const copy = this.durability.copyFor(cls.config, path);
    return copy && new DurableSink(copy.store, copy.key, path);
  }

  publish(version: FlightVersion, placement: Placement | undefined, tierIndex: number, durable?: DurableCopy): void {
    const placed = placement && this.place(version, placement, tierIndex);
    version.placed = placed;
    // A strong put arrives with its durable copy confirmed; a weak one queues its upload below.
    version.durable = durable ?? this.durability.copyFor(version.cls.config, version.path);
    const old = this.catalog.get(version.path);
    this.catalog.set(version.path, version);
    this.limits.add(version, relativeSegments(version.cls, version.path), placed !== undefined);
    const storage = placed?.storage ?? 'durable';
    this.emit({ type: 'put', version, storage, tier: tierIndex });
    this.log.debug(
      { path: version.path, storage, tier: tierIndex, bytes: placed?.bytes ?? durable?.object?.size, reason: 'put' },
      placed ? 'flight stored' : 'flight stored in the durable store only: it fits no tier',
    );
    if (old) this.retire(old, 'replace');
    if (version.durable?.state === 'pending') this.durability.upload(version);
    const object = version.durable?.object;
    if (object && durable) {
      this.emit({
        type: 'durable-write',
        version,
        durability: 'strong',
        bytes: object.size,
        seconds: durable.seconds ?? 0,
      });
    }
  }

  // ---- DurabilityHost ----

  readCurrent(version: FlightVersion): { frames: AsyncIterable<Frame>; done: () => void } | undefined {
    const placed = version.placed;
    if (!placed) return undefined;
    placed.pins++;
    return { frames: placed.placement.read(version.allMessages()), done: () => this.unpin(placed) };
  }

  spilled(session: PutSession, fromTier: number, toTier: number, reason: string): void {
    const tiers = session.cls.config.tiers;
    this.emit({
      type: 'spill',
      cls: session.cls,
      from: (tiers[fromTier] as TierConfig).storage,
      to: (tiers[toTier] as TierConfig).storage,
    });
    this.log.debug({ path: session.path, fromTier, toTier, reason }, 'upload spilled to the next tier');
  }

  storeOnly(session: PutSession, reason: string): void {
    this.log.debug({ path: session.path, reason }, 'flight fits no tier: writing it to the durable store only');
  }

  nextVersionId(): number {
    return ++this.versionIds;
  }

  now(): number {
    return this.clock.now();
  }

  sessionEnded(session: PutSession): void {
    this.sessions.delete(session);
    this.limits.settle(session);
  }

  admit(session: PutSession, bytes: number): void {
    // Called for every message of every put: nothing to do without limit policies.
    if (!this.limits.active) return;
    const segments = relativeSegments(session.cls, session.path);
    this.limits.admit(session, session.cls.config.name, session.path, segments, bytes, this.catalog.get(session.path));
  }

  // ---- LimitHost ----

  evictForLimit(version: FlightVersion, policy: LimitPolicyConfig): boolean {
    const scope = policy.scope;
    const placed = version.placed;
    if (version.retired || (placed && placed.pins > 0) || version.durable?.state === 'pending') return false;
    this.emit({ type: 'limit-evict', policy: policy.name });
    this.log.debug({ path: version.path, policy: policy.name, scope, reason: 'limit' }, 'evicting to keep a limit');
    if (scope === 'ephemeral' && version.durable?.state === 'stored') {
      if (!placed) return false;
      version.placed = undefined;
      this.retirePlaced(placed, 'evict');
      this.limits.dropTierCopy(version);
      this.emit({ type: 'evict', version, storage: placed.storage, tier: placed.tierIndex, outcome: 'dropped' });
      return true;
    }
    if (placed)
      this.emit({ type: 'evict', version, storage: placed.storage, tier: placed.tierIndex, outcome: 'dropped' });
    this.retire(version, 'evict');
    // A total-scope limit counts durable copies too: freeing room means removing it there.
    if (scope === 'total') this.durability.remove(version);
    return true;
  }

  rejected(policy: LimitPolicyConfig): void {
    this.emit({ type: 'limit-reject', policy: policy.name });
  }

  // ---- placement ----

  private place(version: FlightVersion, placement: Placement, tierIndex: number): Placed {
    const placed = new Placed(version, tierIndex, placement);
    this.resident.add(placed);
    const tier = version.cls.config.tiers[tierIndex] as TierConfig;
    this.order.get(placed.storage)?.add(placed, tier.priority);
    return placed;
  }

  private inBackground(work: Promise<unknown>): void {
    this.background.add(work);
    void work.finally(() => this.background.delete(work));
  }

  private retire(version: FlightVersion, reason: RemovalReason): void {
    if (version.retired) return;
    version.retired = reason;
    if (this.catalog.get(version.path) === version) this.catalog.delete(version.path);
    this.limits.remove(version);
    if (reason === 'expire') this.emit({ type: 'expire', version });
    if (reason === 'delete' || reason === 'expire') this.durability.remove(version);
    this.log.debug(
      { path: version.path, storage: version.storage, bytes: version.heldBytes, reason },
      'flight removed',
    );
    if (version.placed) this.retirePlaced(version.placed, reason);
  }

  private retirePlaced(placed: Placed, reason: RemovalReason): void {
    if (placed.retired) return;
    placed.retired = reason;
    this.order.get(placed.storage)?.remove(placed);
    if (placed.pins === 0) this.free(placed);
  }

  private unpin(placed: Placed): void {
    placed.pins--;
    if (placed.pins === 0 && placed.retired) this.free(placed);
  }

  private free(placed: Placed): void {
    if (!this.resident.delete(placed)) return;
    this.types.get(placed.storage)?.uncharge(placed.bytes);
    placed.placement.destroy().catch((err: unknown) => {
      this.log.warn({ storage: placed.storage, err: (err as Error).message }, 'could not remove a flight file');
    });
  }

  emit(event: PlacementEvent): void {
    this.events.emit(event);
  }
}

/** A flight path's segments below its class prefix: what limit nodes are keyed by. */
function relativeSegments(cls: RoutedClass, path: string): string[] {
  const skip = cls.prefix === '' ? 0 : cls.prefix.split('/').length;
  return path.split('/').slice(skip);
}
