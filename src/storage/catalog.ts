import { Deadlines } from '../core/deadlines.js';
import type { FlightObject } from '../durability/flight-object.js';
import { ManifestReads } from './manifest-reads.js';
import { PathIndex } from './path-index.js';
import type { Clock } from '../core/clock.js';
import type { LimitPolicyConfig } from '../config/schema.js';
import type { Logger } from '../core/log.js';
import { normalizePrefix, type FlightPath } from '../core/path.js';
import { InvalidArgumentError, NotFoundError, UnavailableError } from '../errors.js';
import { LimitEnforcer } from '../limits/limit-enforcer.js';
import { relativeSegments, type RoutedClass } from '../routing/router.js';
import type { PlacementEvents } from './events.js';
import type { Durability } from '../durability/durability.js';
import type { UnrecoveredStores } from '../durability/unrecovered-stores.js';
import type { FlightVersion, Placed, RemovalReason } from './flight.js';
import type { Ledger } from './ledger.js';
import type { Landing } from './landing.js';
import { ClassTallies, durableSize, type ClassTally } from './class-tallies.js';
import { TicketGraces } from './ticket-graces.js';

export type { ClassTally } from './class-tallies.js';

/** What the catalog is built on. */
export interface CatalogParts {
  ledger: Ledger;
  clock: Clock;
  log: Logger;
  events: PlacementEvents;
  /** Where the durable objects of deleted and expired flights are removed. */
  durability: Durability;
  /** Stores not recovered yet: a path of theirs that is not here may be there. */
  unrecovered: UnrecoveredStores;
  /** Told when a version leaves the catalog (a dataset loses a partition). */
  landing: Landing;
  /** The limit policies at the start (`limits.replacePolicies` on reload). */
  policies: readonly LimitPolicyConfig[];
}

/**
 * The visible version of every flight path, and the one way out of it (`retire`): a
 * retired version leaves the limits, its tier copy is freed once no reader holds it, and
 * on delete or expiry its durable object goes too.
 */
export class Catalog {
  /** The visible versions by path, in path order: `range` and `page` walk a prefix's flights. */
  readonly paths = new PathIndex();
  /** Replaced versions whose tickets are still honoured (`server.ticketGrace`). */
  private readonly graces: TicketGraces;
  /** Versions by expiry time: a sweep pops what is due, nothing else. */
  private readonly expiries = new Deadlines<FlightVersion>();
  /** Per class: what stats report of its visible flights, kept as they change. */
  private readonly tallies = new ClassTallies();
  /** Reads the manifests of unread versions (one read each, shared). */
  readonly manifests: ManifestReads;
  /**
   * The limit policies (DESIGN §4) over the visible flights: every version published here
   * is counted, every one retired leaves; at an `evict` limit they evict through the
   * catalog (`evictForLimit`). A reload replaces their policies, not them.
   */
  readonly limits: LimitEnforcer<FlightVersion>;
  private readonly ledger: Ledger;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly events: PlacementEvents;
  private readonly durability: Durability;
  private readonly unrecovered: UnrecoveredStores;
  private readonly landing: Landing;

  constructor(parts: CatalogParts) {
    this.ledger = parts.ledger;
    this.clock = parts.clock;
    this.log = parts.log;
    this.events = parts.events;
    this.durability = parts.durability;
    this.unrecovered = parts.unrecovered;
    this.landing = parts.landing;
    this.graces = new TicketGraces(parts.ledger, parts.clock);
    this.manifests = new ManifestReads(
      parts.log,
      (path) => this.paths.get(path),
      (version, object) => this.filled(version, object),
    );
    this.limits = new LimitEnforcer<FlightVersion>(parts.policies, {
      evictForLimit: (version, policy) => this.evictForLimit(version, policy),
      rejected: (policy) => this.events.emit({ type: 'limit-reject', policy: policy.name }),
    });
  }

  get(path: string): FlightVersion | undefined {
    return this.paths.get(path);
  }

  /** The visible version of a normalised path if it is unexpired (an expired one is retired), without events. */
  current(path: string): FlightVersion | undefined {
    const version = this.paths.get(path);
    if (!version || !version.isExpired(this.clock.now())) return version;
    this.retire(version, 'expire');
    return undefined;
  }

  /** Makes a version the visible one of its path, counted by the limits; the one it replaces is retired. */
  publish(version: FlightVersion): void {
    const old = this.paths.get(version.path);
    // A pin is the path's: a new version of a pinned flight is pinned too.
    version.pinned = old?.pinned ?? false;
    this.paths.set(version.path, version);
    if (old !== version) {
      if (old) this.tallies.count(old, -1); // no longer visible: retired below
      version.countedDurable = durableSize(version);
      this.tallies.count(version, 1);
    }
    if (version.expiresAt !== undefined) this.expiries.schedule(version, version.expiresAt);
    this.limits.add(version, relativeSegments(version.cls, version.path), version.placed !== undefined);
    if (old && old !== version) this.retire(old, 'replace');
  }

  /**
   * A flight found in a durable store joins, unless a newer one was put meanwhile (while
   * the store was down or being listed) or it is known already; whether it joined.
   */
  adopt(version: FlightVersion): boolean {
    const existing = this.paths.get(version.path);
    if (existing) {
      const listed = version.durable?.listed;
      // The object this node knows already (a listing retried, or an upload of its own).
      const known = existing.durable?.object?.version ?? existing.durable?.listed?.version;
      if (version.unread && listed?.version !== undefined && known === listed.version) return false;
      // An unread version (only listed) gives way to one read from the store, or listed later.
      if (!existing.unread && existing.createdAt >= version.createdAt) return false;
      if (existing.unread && version.unread && existing.createdAt >= version.createdAt) return false;
    }
    this.publish(version);
    return true;
  }

  /**
   * The current version of a normalised path. NOT_FOUND when absent or expired, or with
   * `tag` (from a ticket) unless the current version is that one: a ticket never reads
   * another version than the one GetFlightInfo described. UNAVAILABLE when the path's
   * durable store has not answered yet, so the flight may exist there.
   */
  find(path: FlightPath, tag?: string): FlightVersion {
    const version = this.paths.get(path);
    if (tag !== undefined && version?.tag !== tag) {
      // A ticket of a replaced version reads it while its grace lasts.
      const graced = this.graces.find(path, tag);
      if (graced) return graced;
    }
    if (!version) {
      const store = this.unrecovered.storeOf(path);
      if (store !== undefined) {
        throw new UnavailableError(
          `flight "${path}" is not in the tiers, and durable store "${store}" cannot be reached yet to look for it`,
        );
      }
      this.events.emit({ type: 'miss', path });
      throw new NotFoundError(`flight "${path}" not found`);
    }
    if (version.isExpired(this.clock.now())) {
      this.retire(version, 'expire');
      this.events.emit({ type: 'miss', path });
      throw new NotFoundError(`flight "${path}" not found (expired)`);
    }
    if (version.unread) {
      // A caller that needs the manifest reads it first (StorageManager.materialize).
      throw new Error(`internal: flight "${path}" was looked up before its manifest was read`);
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
    const under = this.under(prefix, 'ListFlights criteria');
    const now = this.clock.now();
    const out: FlightVersion[] = [];
    for (const version of under) {
      if (version.isExpired(now)) this.retire(version, 'expire');
      else out.push(version);
    }
    return out;
  }

  /**
   * An unread version's manifest was read (`manifests`): it is filled in and counted by its
   * exact bytes from now on; one whose object is gone, or is not this flight, leaves the
   * catalog (its object untouched); one that turns out expired expires.
   */
  private filled(version: FlightVersion, object: FlightObject | undefined): void {
    if (!object || object.path !== version.path) {
      this.retire(version, 'evict'); // its object, if any, is left alone
      return;
    }
    this.limits.remove(version);
    version.fill(object);
    this.durableChanged(version);
    this.limits.add(version, relativeSegments(version.cls, version.path), version.placed !== undefined);
    if (version.expiresAt !== undefined) this.expiries.schedule(version, version.expiresAt);
    if (version.isExpired(this.clock.now())) this.retire(version, 'expire');
  }

  /**
   * A reload's classes: each version moves to its new class, its copy keeping the tier of
   * the same storage type (or its index when the class has none of that type).
   */
  reclass(moves: Iterable<readonly [FlightVersion, RoutedClass]>): void {
    for (const [version, cls] of moves) {
      const previous = version.cls.config.name;
      this.tallies.count(version, -1);
      version.cls = cls;
      this.tallies.count(version, 1);
      // Its tiers may have changed: a clean copy is dropped rather than placed again.
      this.dropClean(version);
      const placed = version.placed;
      if (!placed) continue;
      const found = cls.config.tiers.findIndex((t) => t.storage === placed.storage);
      const tier = found >= 0 ? found : placed.tierIndex;
      this.ledger.reorder(placed, tier, cls.config.tiers[tier]?.priority ?? 0, previous);
    }
  }

  /**
   * A reload's limit policies: every visible flight counted again under them (least
   * recently read first, as their eviction order expects), then every node over an
   * `evict` limit evicted down to it.
   */
  recount(policies: readonly LimitPolicyConfig[]): void {
    this.limits.replacePolicies(policies);
    if (!this.limits.active) return;
    for (const version of [...this.paths.values()].sort((a, b) => a.lastAccess - b.lastAccess)) {
      this.limits.add(version, relativeSegments(version.cls, version.path), version.placed !== undefined);
    }
    this.limits.enforceAll();
  }

  /** Pins the flight at a path (NOT_FOUND when there is none): never evicted or moved down from now on. */
  pin(path: FlightPath): FlightVersion {
    const version = this.find(path);
    if (!version.pinned) this.tallies.of(version.cls.config.name).pinned++;
    version.pinned = true;
    this.log.info({ path }, 'flight pinned');
    return version;
  }

  /** Unpins a path; whether it was pinned. */
  unpin(path: FlightPath): boolean {
    const version = this.paths.get(path);
    const was = version?.pinned ?? false;
    if (version && was) {
      version.pinned = false;
      this.tallies.of(version.cls.config.name).pinned--;
    }
    if (was) this.log.info({ path }, 'flight unpinned');
    return was;
  }

  /** Removes a flight (and the replaced versions kept for its tickets); returns whether it existed. */
  delete(path: FlightPath): boolean {
    this.graces.endPath(path);
    const version = this.paths.get(path);
    if (!version) return false;
    this.retire(version, 'delete');
    return true;
  }

  /** Removes every flight under a whole-segment prefix; returns how many. */
  deletePrefix(prefix: string): number {
    const under = this.under(prefix, 'delete-prefix');
    const norm = this.prefixOf(prefix, 'delete-prefix');
    this.graces.endUnder(norm);
    for (const version of under) this.retire(version, 'delete');
    return under.length;
  }

  /** Until when a ticket issued now for `version` is honoured (see TicketGraces.issue). */
  issueTickets(version: FlightVersion, ticketGrace: number): number {
    return this.graces.issue(version, ticketGrace);
  }

  /** Replaced versions kept for their tickets, now. */
  get gracedCount(): number {
    return this.graces.count;
  }

  /** Ends the grace of a replaced version: its copy is freed (once no reader holds it). */
  endGrace(version: FlightVersion): void {
    this.graces.end(version);
  }

  /**
   * Retires every expired flight, from whichever tier holds it, and ends graces that ran
   * out; returns how many flights expired. Costs what is due: the deadlines are in heaps.
   */
  sweepExpired(): number {
    const now = this.clock.now();
    this.graces.sweep(now);
    let count = 0;
    for (const version of this.expiries.due(now)) {
      if (version.retired || this.paths.get(version.path) !== version || !version.isExpired(now)) continue;
      this.retire(version, 'expire');
      count++;
    }
    this.expiries.compact(this.paths.size, (v) => !v.retired);
    return count;
  }

  /** Removes a version from the catalog and the limits; its copies go (the durable one on delete and expiry). */
  retire(version: FlightVersion, reason: RemovalReason): void {
    if (version.retired) return;
    version.retired = reason;
    if (this.paths.get(version.path) === version) {
      this.paths.delete(version.path);
      this.tallies.count(version, -1);
    }
    this.limits.remove(version);
    if (reason === 'expire') this.events.emit({ type: 'expire', version });
    if (reason === 'delete' || reason === 'expire') this.durability.remove(version);
    this.log.debug(
      { path: version.path, storage: version.storage, bytes: version.heldBytes, reason },
      'flight removed',
    );
    this.landing.retired(version, reason);
    this.dropClean(version);
    const placed = version.placed;
    if (!placed) return;
    if (reason === 'replace' && this.graces.keep(version, placed)) return;
    this.ledger.retire(placed, reason);
  }

  /** Frees a version's clean copy, if it has one (when no longer read). */
  dropClean(version: FlightVersion): void {
    const clean = version.clean;
    version.clean = undefined;
    if (clean) this.ledger.retire(clean, 'evict');
  }

  /** The version keeps only its durable copy: its tier copy, if any, is freed (when no longer read). */
  dropTierCopy(version: FlightVersion): void {
    this.dropClean(version);
    const placed = version.placed;
    version.placed = undefined;
    if (placed && this.isVisible(version))
      this.tallies.of(version.cls.config.name).durableOnlyBytes += version.countedDurable;
    if (placed) this.ledger.retire(placed, 'evict');
    this.limits.dropTierCopy(version);
  }

  /** A version's tier copy is `placed` from now on (restored, spilled, moved, promoted). */
  setCopy(version: FlightVersion, placed: Placed): void {
    const had = version.placed !== undefined;
    version.placed = placed;
    if (!had && this.isVisible(version))
      this.tallies.of(version.cls.config.name).durableOnlyBytes -= version.countedDurable;
  }

  /**
   * A version's durable copy changed (an upload landed, a manifest was read, a backfill
   * found its object): its bytes are counted as they are now.
   */
  durableChanged(version: FlightVersion): void {
    if (!this.isVisible(version)) return;
    const delta = durableSize(version) - version.countedDurable;
    if (delta === 0) return;
    const tally = this.tallies.of(version.cls.config.name);
    tally.durableBytes += delta;
    if (!version.placed) tally.durableOnlyBytes += delta;
    version.countedDurable += delta;
  }

  /** A class's visible flights, pinned ones, and durable bytes. */
  classTally(className: string): Readonly<ClassTally> {
    return this.tallies.of(className);
  }

  /** Pinned flights in every class. */
  get pinnedCount(): number {
    return this.tallies.pinned;
  }

  private isVisible(version: FlightVersion): boolean {
    return this.paths.get(version.path) === version;
  }

  /** Frees a flight for a limit: its tier copy (scope ephemeral, durable copy kept) or the whole flight. */
  evictForLimit(version: FlightVersion, policy: LimitPolicyConfig): boolean {
    const scope = policy.scope;
    const placed = version.placed;
    if (version.retired || version.pinned || (placed && placed.pins > 0) || version.durable?.state === 'pending') {
      return false;
    }
    this.events.emit({ type: 'limit-evict', policy: policy.name });
    this.log.debug({ path: version.path, policy: policy.name, scope, reason: 'limit' }, 'evicting to keep a limit');
    if (placed)
      this.events.emit({ type: 'evict', version, storage: placed.storage, tier: placed.tierIndex, outcome: 'dropped' });
    if (scope === 'ephemeral' && version.durable?.state === 'stored') {
      if (!placed) return false;
      this.dropTierCopy(version);
      return true;
    }
    this.retire(version, 'evict');
    // A total-scope limit counts durable copies too: freeing room means removing it there.
    if (scope === 'total') this.durability.remove(version);
    return true;
  }

  private under(prefix: string, what: string): FlightVersion[] {
    return [...this.paths.range(this.prefixOf(prefix, what))];
  }

  private prefixOf(prefix: string, what: string): string {
    const norm = normalizePrefix(prefix);
    if (!norm.ok) throw new InvalidArgumentError(`${what}: ${norm.reason}`);
    return norm.value;
  }
}
