import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/log.js';
import type { StorageClassConfig } from '../config/schema.js';
import { DurableStoreError, kindOf, type DurableStore } from '../durable/durable-store.js';
import { readFlightObject, readFlightObjectMessages, writeFlightObject, type ObjectSource } from './flight-object.js';
import type { PlacementEvents } from '../storage/events.js';
import type { Landing } from '../storage/landing.js';
import type { Ledger } from '../storage/ledger.js';
import type { Routes } from '../routing/routes.js';
import { FlightVersion, type DurableCopy } from '../storage/flight.js';
import type { RoutedClass } from '../routing/router.js';
import { limit, type Limit } from '../core/limit.js';
import { retry } from '../core/retry.js';
import { StrongSink } from './strong-sink.js';
import { sleep } from '../core/sleep.js';

export interface DurabilityStats {
  /** Weak uploads waiting or running. */
  queueDepth: number;
  /** Milliseconds the oldest of them has waited. */
  oldestAgeMs: number;
  uploads: number;
  uploadFailures: number;
  deletes: number;
}

/** Attempts at deleting a durable object while its store fails transiently. */
const DELETE_ATTEMPTS = 21;

/** What the write-through is built on. */
export interface DurabilityParts {
  /** Durable stores by id. */
  stores: ReadonlyMap<string, DurableStore>;
  /** Where weak uploads read a version's current tier copy (pinned while it is read). */
  ledger: Ledger;
  events: PlacementEvents;
  /** Told when a weak upload reaches the store (other nodes' waiters can read the flight then). */
  landing: Landing;
  clock: Clock;
  log: Logger;
  /** Where flights still without a durable copy at shutdown wait for the next start. */
  spool?: DurableStore;
  /** Weak uploads at once. */
  concurrency?: number;
}

/**
 * The write-through to durable stores (DESIGN.md §2): weak uploads in the background with
 * bounded concurrency and retries with backoff, deletions that reach the store, and the
 * scan that finds durable flights after a restart. Work on one object key runs in order
 * (an upload, then a delete, then the next upload), so a late upload never resurrects a
 * deleted flight or overwrites a newer one.
 */
export class Durability {
  private readonly chains = new Map<string, Promise<void>>();
  private readonly waiting = new Map<FlightVersion, number>();
  private readonly counters = { uploads: 0, uploadFailures: 0, deletes: 0 };
  private closed = false;

  /** Spooled versions: where their object belongs (the spool copy is `version.durable`). */
  private readonly spooled = new Map<FlightVersion, DurableCopy>();
  /** The queued uploads of spooled versions, for a backfill resumed after a restart. */
  private readonly spoolUploads = new Map<FlightVersion, Promise<void>>();

  private readonly stores: ReadonlyMap<string, DurableStore>;
  private readonly ledger: Ledger;
  private readonly events: PlacementEvents;
  private readonly landing: Landing;
  private readonly clock: Clock;
  private readonly log: Logger;
  private spool: DurableStore | undefined;
  /** Weak uploads at once. */
  private readonly uploads: Limit;

  constructor(parts: DurabilityParts) {
    this.stores = parts.stores;
    this.ledger = parts.ledger;
    this.events = parts.events;
    this.landing = parts.landing;
    this.clock = parts.clock;
    this.log = parts.log;
    this.spool = parts.spool;
    this.uploads = limit(parts.concurrency ?? 4);
  }

  /** Takes a spool opened after the start (a reload made a class weak). */
  useSpool(spool: DurableStore): void {
    this.spool ??= spool;
  }

  /** The durable copy a new version of this class gets, or undefined for `durability: none`. */
  copyFor(cls: StorageClassConfig, path: string): DurableCopy | undefined {
    if (cls.durability === 'none' || cls.durableStore === undefined) return undefined;
    const store = this.stores.get(cls.durableStore);
    if (!store) throw new Error(`class "${cls.name}": durable store "${cls.durableStore}" is not configured`);
    return { store, key: cls.durablePrefix + path, state: 'pending' };
  }

  /**
   * The store upload of a strong put, streamed while it arrives; undefined for other
   * classes. `evenIfWeak`: a weak flight that fits no tier is written to the store the same way.
   */
  strongSink(cls: StorageClassConfig, path: string, evenIfWeak = false): StrongSink | undefined {
    if (cls.durability !== 'strong' && !(evenIfWeak && cls.durability === 'weak')) return undefined;
    const copy = this.copyFor(cls, path);
    return copy && new StrongSink(copy.store, copy.key, path);
  }

  /**
   * Queues a weak upload of a published version; resolves (never rejects) once it is
   * stored, has failed for good, or is no longer wanted.
   */
  upload(version: FlightVersion): Promise<void> {
    const copy = version.durable;
    if (!copy) return Promise.resolve();
    this.waiting.set(version, this.clock.now());
    return this.inOrder(copy.key, () =>
      this.uploadWithRetries(version, copy, () => this.ledger.readCurrent(version)),
    ).finally(() => this.waiting.delete(version));
  }

  /**
   * Writes a version's durable object now, once (a backfill job retries): reads the current
   * tier copy, uploads it, and makes `copy` the version's stored copy. Returns the bytes.
   */
  async writeNow(version: FlightVersion, copy: DurableCopy): Promise<number> {
    const source = this.ledger.readCurrent(version);
    if (!source) throw new Error(`flight "${version.path}" has no tier copy to upload`);
    const started = performance.now();
    let object;
    try {
      object = await writeVersion(copy.store, copy.key, version, source);
    } finally {
      source.done();
    }
    copy.object = object;
    copy.state = 'stored';
    version.durable = copy;
    const seconds = (performance.now() - started) / 1000;
    this.events.emit({ type: 'durable-write', version, durability: 'weak', bytes: object.size, seconds });
    this.landing.durable(version);
    return object.size;
  }

  /** Removes a version's durable object (delete, delete-prefix, expiry), retrying while the store is down. */
  remove(version: FlightVersion): void {
    const target = this.spooled.get(version);
    if (target) {
      // A spooled flight: its object in the store (an older version, perhaps) goes too.
      this.spooled.delete(version);
      this.removeCopy(version, target);
    }
    if (version.durable) this.removeCopy(version, version.durable);
  }

  private removeCopy(version: FlightVersion, copy: DurableCopy): void {
    void this.inOrder(copy.key, async () => {
      const once = async () => {
        try {
          await copy.store.delete(copy.key);
        } catch (err) {
          this.events.emit({ type: 'durable-failure', cls: version.cls, operation: 'delete', kind: kindOf(err) });
          throw err;
        }
      };
      await retry(once, {
        clock: this.clock,
        attempts: DELETE_ATTEMPTS,
        retryable: (err) => !this.closed && isTransient(err),
      }).then(
        () => this.counters.deletes++,
        (err: unknown) =>
          this.log.error({ key: copy.key, err: (err as Error).message }, 'could not delete a durable object'),
      );
    });
  }

  /**
   * Writes to the spool, as the object its store would have got (keyed by store id and
   * object key), every weak flight whose upload has not finished and every flight in
   * `unbacked` (flights of a durable class with no stored durable copy: a class made durable
   * by a reload whose backfill has not reached them); returns how many. Called at shutdown
   * once the grace is over: the next start serves them from the spool and uploads them
   * (`recoverSpool`), so a graceful stop loses no flight of a durable class.
   */
  async spoolPending(unbacked: Iterable<FlightVersion> = []): Promise<number> {
    const spool = this.spool;
    if (!spool) {
      const lost = this.waiting.size + [...unbacked].length;
      if (lost > 0)
        this.log.error(
          { flights: lost },
          'flights of durable classes without a durable copy are lost at this shutdown: there is no spool (set server.spool)',
        );
      return 0;
    }
    const pending = new Map<FlightVersion, DurableCopy | undefined>();
    for (const version of this.waiting.keys()) pending.set(version, version.durable);
    for (const version of unbacked) {
      if (pending.has(version) || version.durable?.state === 'stored') continue;
      pending.set(version, this.copyFor(version.cls.config, version.path));
    }
    let count = 0;
    for (const [version, copy] of pending) {
      const source = this.ledger.readCurrent(version);
      if (!copy || copy.state === 'stored' || version.retired || !source) {
        source?.done();
        continue;
      }
      try {
        await writeVersion(spool, spoolKey(copy), version, source);
        count++;
      } catch (err) {
        this.log.error({ path: version.path, err: (err as Error).message }, 'could not spool a flight; it is lost');
      } finally {
        source.done();
      }
    }
    return count;
  }

  /** Whether a version's upload from the spool to its store has yet to finish. */
  isSpooled(version: FlightVersion): boolean {
    return this.spooled.has(version);
  }

  /**
   * Waits for a spooled version's queued upload (a backfill resumed after a restart counts
   * it); resolves with the object's bytes once its store has it, or fails if it could not.
   */
  async awaitSpooled(version: FlightVersion): Promise<number> {
    await this.spoolUploads.get(version);
    const copy = version.durable;
    if (this.spooled.has(version) || !copy?.object || copy.state !== 'stored')
      throw new Error(`flight "${version.path}" spooled at the last shutdown could not be uploaded`);
    return copy.object.size;
  }

  /**
   * The flights a previous run spooled at shutdown: served from the spool until their upload
   * (queued here) lands in their store. Expired ones are dropped, and so are those whose
   * store or class is gone from the config (logged).
   */
  async recoverSpool(routes: Routes): Promise<FlightVersion[]> {
    const spool = this.spool;
    if (!spool) return [];
    const out: FlightVersion[] = [];
    for await (const info of spool.list('')) {
      const slash = info.key.indexOf('/');
      if (slash <= 0) continue; // the directory lock's own files
      const storeId = decodeURIComponent(info.key.slice(0, slash));
      const key = info.key.slice(slash + 1);
      const store = this.stores.get(storeId);
      const object = await readFlightObject(spool, info.key).catch(() => undefined);
      let cls: RoutedClass | undefined;
      try {
        cls = object && routes.route(object.path);
      } catch {
        cls = undefined;
      }
      if (!store || !object || !cls || cls.config.durableStore !== storeId) {
        this.log.error(
          { spooled: info.key },
          'a spooled flight no longer belongs to a durable class; left in the spool',
        );
        continue;
      }
      const version = FlightVersion.fromObject(object, cls);
      if (version.isExpired(this.clock.now())) {
        await spool.delete(info.key);
        continue;
      }
      version.durable = { store: spool, key: info.key, state: 'stored', object };
      const target: DurableCopy = { store, key, state: 'pending' };
      this.spooled.set(version, target);
      out.push(version);
    }
    return out;
  }

  /** Queues the upload of a spooled version to its store (after recoverSpool). */
  uploadSpooled(version: FlightVersion): Promise<void> {
    const target = this.spooled.get(version);
    const spooled = version.durable;
    if (!target || !spooled?.object) return Promise.resolve();
    const object = spooled.object;
    const read = () => ({
      frames: readFlightObjectMessages(spooled.store, object, version.allMessages()),
      done: () => undefined,
    });
    this.waiting.set(version, this.clock.now());
    const upload = this.inOrder(target.key, () => this.uploadWithRetries(version, target, read)).finally(() => {
      this.waiting.delete(version);
      this.spoolUploads.delete(version);
    });
    this.spoolUploads.set(version, upload);
    return upload;
  }

  stats(): DurabilityStats {
    const now = this.clock.now();
    let oldest = now;
    for (const t of this.waiting.values()) oldest = Math.min(oldest, t);
    return { queueDepth: this.waiting.size, oldestAgeMs: now - oldest, ...this.counters };
  }

  /** Resolves when every queued upload and delete has finished, or after `deadlineMs`. */
  async drain(deadlineMs: number): Promise<boolean> {
    const all = Promise.allSettled([...this.chains.values()]).then(() => true);
    const timeout = sleep(deadlineMs).then(() => false);
    const done = await Promise.race([all, timeout]);
    if (!done) this.log.warn({ pending: this.waiting.size }, 'durable uploads still pending at shutdown');
    return done;
  }

  close(): void {
    this.closed = true;
    for (const store of this.stores.values()) store.close();
  }

  /** Uploads a version's durable copy, retrying with backoff while the store fails transiently. */
  private async uploadWithRetries(
    version: FlightVersion,
    copy: DurableCopy,
    read: () => (ObjectSource & { done: () => void }) | undefined,
  ): Promise<void> {
    const once = async (): Promise<void> => {
      if (version.retired || this.closed) return; // replaced or deleted: nothing to make durable
      if (version.settling) {
        // Moving down (a spill that finished after the put): the object is made from the copy it lands in.
        await version.settling;
        if (version.retired || this.closed) return;
      }
      const source = read();
      if (!source) return;
      try {
        await this.uploads(() => this.uploadOnce(version, copy, source));
      } finally {
        source.done();
      }
    };
    await retry(once, {
      clock: this.clock,
      retryable: isTransient,
      onRetry: (err, attempt) =>
        this.log.warn({ key: copy.key, attempt, err: (err as Error).message }, 'durable upload failed; retrying'),
    }).catch((err: unknown) => {
      copy.state = 'failed';
      this.log.error({ key: copy.key, err: (err as Error).message }, 'durable upload failed for good');
    });
  }

  /** One attempt at uploading a version's durable copy (counted, and announced either way). */
  private async uploadOnce(version: FlightVersion, copy: DurableCopy, source: ObjectSource): Promise<void> {
    const started = performance.now();
    try {
      copy.object = await writeVersion(copy.store, copy.key, version, source);
      copy.state = 'stored';
      this.counters.uploads++;
    } catch (err) {
      this.counters.uploadFailures++;
      this.events.emit({ type: 'durable-failure', cls: version.cls, operation: 'upload', kind: kindOf(err) });
      throw err;
    }
    const spooled = version.durable;
    if (spooled && spooled !== copy) {
      // Uploaded from the spool: the store's copy is the flight's now.
      version.durable = copy;
      this.spooled.delete(version);
      void spooled.store.delete(spooled.key).catch(() => undefined);
    }
    const seconds = (performance.now() - started) / 1000;
    const bytes = copy.object.size;
    this.events.emit({ type: 'durable-write', version, durability: 'weak', bytes, seconds });
    this.landing.durable(version);
    this.log.debug({ key: copy.key, bytes, seconds }, 'durable copy written');
  }

  private inOrder(key: string, work: () => Promise<void>): Promise<void> {
    const next = (this.chains.get(key) ?? Promise.resolve()).then(work, work);
    this.chains.set(key, next);
    void next.finally(() => {
      if (this.chains.get(key) === next) this.chains.delete(key);
    });
    return next;
  }
}

/** Writes a version's object under `key` from its current copy (see writeFlightObject). */
function writeVersion(store: DurableStore, key: string, version: FlightVersion, source: ObjectSource) {
  return writeFlightObject(store, key, version, version.schemaHeader, version.messageCount, source);
}

/** A spooled object's key: its store's id, then its key in that store. */
function spoolKey(copy: DurableCopy): string {
  return `${encodeURIComponent(copy.store.id)}/${copy.key}`;
}

function isTransient(err: unknown): boolean {
  return !(err instanceof DurableStoreError) || err.kind === 'transient';
}
