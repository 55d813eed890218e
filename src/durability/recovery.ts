import type { StorageClassConfig } from '../config/schema.js';
import { backoff } from '../core/backoff.js';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/log.js';
import { sleep } from '../core/sleep.js';
import { DurableStoreError, type DurableStore } from '../durable/durable-store.js';
import type { RoutedClass } from '../routing/router.js';
import { FlightVersion } from '../storage/flight.js';
import type { Durability } from './durability.js';
import { readFlightObject, type FlightObject } from './flight-object.js';

/** What recovery needs from the manager whose catalog it fills. */
export interface RecoveryHost {
  /** The storage classes now configured. */
  classes(): readonly RoutedClass[];
  /** The class of a normalised path read back from a store; throws when it is not one. */
  route(path: string): RoutedClass;
  nextVersionId(): number;
  /** Adds a recovered version to the catalog, unless a newer one was put meanwhile. */
  adopt(version: FlightVersion): void;
}

/**
 * Finds the flights of durable classes in their stores after a start (DESIGN §2), so they
 * are listed and served (restored on first read). A store that cannot be reached does not
 * stop the start: its flights are found in the background, with backoff on the clock, once
 * it answers; until then it is `degraded` and lookups of its paths say UNAVAILABLE.
 */
export class Recovery {
  /** Durable stores whose flights are still to be recovered. */
  private readonly unrecovered = new Set<string>();
  private closed = false;

  constructor(
    private readonly stores: ReadonlyMap<string, DurableStore>,
    private readonly durability: Durability,
    private readonly host: RecoveryHost,
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {}

  /**
   * Recovers every store the classes use, in real time (a start is not driven by a test
   * clock): a store that answers is recovered before the first call (waiting `waitMs` at
   * most for a slow listing), one that refuses fails at once, and one that has not answered
   * at all within `answerMs` (connections that hang) is not waited for: the classes that do
   * not use it serve, and its paths answer UNAVAILABLE naming it until it answers.
   */
  async start(waitMs: number, answerMs: number): Promise<void> {
    const stores = new Set(
      this.host
        .classes()
        .map((c) => c.config.durableStore)
        .filter((s) => s !== undefined),
    );
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

  /** Durable stores whose flights have not been recovered yet: they could not be reached. */
  get degraded(): string[] {
    return [...this.unrecovered];
  }

  /** The store a path's flight may still be found in once it answers, if that store is degraded. */
  pendingStoreOf(path: string, storeOf: (path: string) => string | undefined): string | undefined {
    if (this.unrecovered.size === 0) return undefined;
    const store = storeOf(path);
    return store !== undefined && this.unrecovered.has(store) ? store : undefined;
  }

  close(): void {
    this.closed = true;
  }

  /**
   * The flight at a normalised path as its class's durable store has it now (another node
   * put it there); undefined when the class keeps none, or it is not there or expired.
   */
  async find(path: string): Promise<FlightVersion | undefined> {
    const cls = this.host.route(path);
    const config = cls.config;
    const store = config.durableStore === undefined ? undefined : this.stores.get(config.durableStore);
    if (config.durability === 'none' || !store) return undefined;
    const key = config.durablePrefix + path;
    const object = await readFlightObject(store, key);
    if (!object || object.path !== path) return undefined;
    const version = FlightVersion.fromObject(object, cls, this.host.nextVersionId());
    version.durable = { store, key, state: 'stored', object };
    return version.isExpired(this.clock.now()) ? undefined : version;
  }

  /** `answered`: called once the store has said anything (its first listing page, or an error). */
  private async recoverStore(store: string, attempt: number, answered?: () => void): Promise<void> {
    if (this.closed) return;
    const classes = this.host.classes().filter((c) => c.config.durableStore === store);
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
    for (const version of versions) this.host.adopt(version);
    this.unrecovered.delete(store);
    this.log.info({ store, flights: versions.length, attempt }, 'durable flights recovered');
  }

  /**
   * The durable flights a restarted server serves: every flight object under the prefixes
   * of the durable classes whose path still routes to that class. Expired ones are removed
   * from the store instead (never served, even before a sweeper would reach them).
   */
  private async recover(classes: readonly RoutedClass[], answered?: () => void): Promise<FlightVersion[]> {
    const now = this.clock.now();
    const out: FlightVersion[] = [];
    // Scanned into a list first: a store that fails half-way recovers nothing, and is retried.
    const found = [];
    for await (const entry of this.scan(
      classes.map((c) => c.config),
      answered,
    ))
      found.push(entry);
    for (const { cls, object, store } of found) {
      const routed = this.host.route(object.path);
      if (routed.config !== cls) continue; // another class's object under an overlapping prefix
      const version = FlightVersion.fromObject(object, routed, this.host.nextVersionId());
      version.durable = { store, key: object.key, state: 'stored', object };
      if (version.isExpired(now)) this.durability.remove(version);
      else out.push(version);
    }
    return out;
  }

  /** Every flight object under the prefixes of the given durable classes. */
  private async *scan(
    classes: readonly StorageClassConfig[],
    answered?: () => void,
  ): AsyncGenerator<{ cls: StorageClassConfig; object: FlightObject; store: DurableStore }> {
    for (const cls of classes) {
      if (cls.durability === 'none' || cls.durableStore === undefined) continue;
      const store = this.stores.get(cls.durableStore);
      if (!store) continue;
      for await (const info of store.list(cls.durablePrefix)) {
        answered?.();
        try {
          const object = await readFlightObject(store, info.key);
          if (object && info.key === cls.durablePrefix + object.path) yield { cls, object, store };
        } catch (err) {
          if (err instanceof DurableStoreError && err.kind === 'transient') throw err; // the store, not the object
          this.log.warn({ key: info.key, err: (err as Error).message }, 'skipping an object that is not a flight');
        }
      }
      answered?.(); // an empty listing is an answer too
    }
  }
}
