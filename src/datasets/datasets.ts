import type { Clock } from '../core/clock.js';
import { partitionOf, partitionPath, type FlightPath } from '../core/path.js';
import { Timers } from '../core/timers.js';
import { InvalidArgumentError, NotFoundError, ResourceExhaustedError, retryHere } from '../errors.js';

/** A request header: this DoPut writes partition `<i>` of `<n>` of the dataset at its path. */
export const PARTITION_HEADER = 'x-tierflight-partition';
/** The most partitions one dataset may have. */
export const MAX_PARTITIONS = 4096;
/** The most reads that may wait at once for datasets to complete. */
export const MAX_WAITERS = 10_000;
/** How long a reader of a dataset still being written is told to wait before it looks again. */
const INCOMPLETE_RETRY_MS = 1000;

/** `x-tierflight-partition: <i>/<n>`, checked: 0 ≤ i < n ≤ MAX_PARTITIONS. */
export function parsePartition(value: string): { index: number; count: number } {
  const m = /^(\d{1,9})\/(\d{1,9})$/.exec(value.trim());
  const index = Number(m?.[1]);
  const count = Number(m?.[2]);
  if (!m || count < 1 || count > MAX_PARTITIONS || index >= count) {
    throw new InvalidArgumentError(
      `${PARTITION_HEADER} must be "<i>/<n>" with 0 <= i < n <= ${MAX_PARTITIONS}, got "${value}"`,
    );
  }
  return { index, count };
}

/**
 * What a landed partition is: the version its put wrote (unknown for one found after a
 * restart), and in a cluster the node it landed on and its size (another node's partition
 * is described from these).
 */
export interface LandedPartition {
  tag?: string;
  node?: string;
  records?: number;
  bytes?: number;
}

/** One generation of a dataset: `count` partitions, those landed so far. */
export interface Generation {
  readonly dataset: FlightPath;
  readonly number: number;
  readonly count: number;
  readonly landed: Map<number, LandedPartition>;
  /** When it became visible (all landed), or undefined while pending. */
  completedAt?: number;
  /** The schema message every partition must carry (the first partition's). */
  schema?: Buffer;
}

/** Where the datasets' partitions are stored (the storage manager). */
export interface PartitionStore {
  /** The stored partitions of a dataset (their paths), as the catalog knows them now. */
  stored(dataset: FlightPath): FlightPath[];
  /** Removes partitions (in a cluster, wherever they are held). */
  remove(paths: FlightPath[]): void;
  /** Pins or unpins a stored partition (a pinned dataset's partitions are never evicted). */
  pin(path: FlightPath, pinned: boolean): Promise<void>;
  /** How long a replaced generation's partitions stay for the tickets issued for them (`server.ticketGrace`). */
  readonly graceMs: number;
}

/**
 * A dataset that lost a partition: dropped whole, and said so. `evict`/`expire`: the
 * partition left its node's catalog; `node`: the cluster member holding it went down;
 * `missing`: a read found it gone.
 */
export interface DatasetLoss {
  dataset: FlightPath;
  index: number;
  count: number;
  reason: 'evict' | 'expire' | 'node' | 'missing';
  /** The member that went down (`node`). */
  node?: string;
}

const LOSS_WORDS: Record<DatasetLoss['reason'], string> = {
  evict: 'evicted',
  expire: 'expired',
  node: 'its node left',
  missing: 'gone',
};

interface DatasetState {
  /** The visible generation: every partition landed. */
  complete?: Generation;
  /** The generation being written (partitions landing in any order). */
  pending?: Generation;
  /** Replaced generations kept for their tickets, each with the cancel of its removal. */
  retiring: Map<Generation, () => void>;
  /** Pinned: every generation's partitions are pinned as it becomes visible. */
  pinned?: boolean;
  /**
   * Older incomplete generations found among stored partitions (`recover`): kept until a
   * newer generation is visible, since more of their partitions may yet be reported.
   */
  found?: Map<number, Generation>;
  next: number;
}

/**
 * The partitioned datasets of this node (DESIGN §9): which generation each partition put
 * belongs to, and which generation is visible. A generation becomes visible atomically
 * when all its partitions have landed, and replaces the one before, whose partitions stay
 * for the tickets issued for them (`server.ticketGrace`) and then go; until a generation is
 * visible the dataset is NOT_FOUND naming the partitions still missing. A partition put
 * again after its generation's put of it, or with another partition count, starts a new
 * generation (one still being written is abandoned, its partitions removed).
 */
export class Datasets {
  private readonly states = new Map<string, DatasetState>();
  /** Datasets dropped because they lost a partition: what a read of them is told, until it is written again. */
  private readonly losses = new Map<string, DatasetLoss>();
  /** Reads waiting for a dataset to become visible (`x-tierflight-wait-ms`), by dataset. */
  private readonly waiting = new Map<string, Set<() => void>>();
  private waiters = 0;
  private readonly timers: Timers;

  constructor(
    private readonly clock: Clock,
    private readonly store: PartitionStore,
    /** Told of each dataset lost (metrics, logs). */
    private readonly onLoss: (loss: DatasetLoss) => void = () => undefined,
    /**
     * Whether a dataset unknown here is looked for among the stored partitions (after a
     * restart). Not in a cluster: there the dataset's home knows it from the puts alone, and
     * its partitions on other nodes are not in this node's catalog.
     */
    private readonly rebuilds = true,
  ) {
    this.timers = new Timers(clock);
  }

  /**
   * A stored flight left the catalog. A partition of a dataset's visible or pending
   * generation that was evicted or expired loses the whole dataset (DESIGN §9): its other
   * partitions go, and reads say it was lost, so memory pressure never leaves part of a
   * table to be read. (Deferred: the catalog is in the middle of removing a flight.)
   */
  retired(path: string, reason: string): void {
    if (reason !== 'evict' && reason !== 'expire') return;
    const name = partitionOf(path);
    if (!name) return;
    queueMicrotask(() => {
      const state = this.states.get(name.dataset);
      const current = [state?.complete, state?.pending].some((g) => g?.number === name.generation);
      if (!state || !current) return;
      this.lose({ dataset: name.dataset, index: name.index, count: name.count, reason });
    });
  }

  /** Drops a dataset that lost a partition: reads say so (recompute it) until it is written again. */
  lose(loss: DatasetLoss): void {
    this.drop(loss.dataset);
    this.losses.set(loss.dataset, loss);
    this.onLoss(loss);
  }

  /**
   * A cluster member went down: every dataset with a partition that landed on it loses that
   * partition, unless `durable` says the dataset's class keeps it in a durable store (its
   * partitions are restored from there instead).
   */
  memberLost(node: string, durable: (dataset: FlightPath) => boolean): void {
    for (const [dataset, state] of [...this.states]) {
      if (durable(dataset as FlightPath)) continue;
      for (const generation of [state.complete, state.pending]) {
        const lost = [...(generation?.landed ?? [])].find(([, p]) => p.node === node);
        if (generation && lost) {
          this.lose({ dataset: dataset as FlightPath, index: lost[0], count: generation.count, reason: 'node', node });
          break;
        }
      }
    }
  }

  /**
   * The generation `number` of a dataset while it is being written or visible; once it was
   * replaced, abandoned or dropped, a detached one (a partition landing for it goes, see `landed`).
   */
  generation(dataset: FlightPath, number: number, count: number): Generation {
    const state = this.states.get(dataset);
    const known = [state?.pending, state?.complete].find((g) => g?.number === number);
    return known ?? { dataset, number, count, landed: new Map() };
  }

  /** The generation a put of partition `index` of `count` belongs to (a new one when needed). */
  begin(dataset: FlightPath, index: number, count: number): Generation {
    let state = this.state(dataset);
    if (!state) this.states.set(dataset, (state = { next: 1, retiring: new Map() }));
    this.losses.delete(dataset); // written again
    const pending = state.pending;
    if (pending && pending.count === count && !pending.landed.has(index)) return pending;
    if (pending) this.removeNow(pending);
    const generation: Generation = { dataset, number: state.next++, count, landed: new Map() };
    state.pending = generation;
    return generation;
  }

  /** Checks a partition's schema message against its generation's (the first partition's). */
  checkSchema(generation: Generation, index: number, schema: Buffer): void {
    generation.schema ??= schema;
    if (!generation.schema.equals(schema)) {
      throw new InvalidArgumentError(
        `dataset "${generation.dataset}": partition ${index} has another schema than the partitions before it`,
      );
    }
  }

  /**
   * Partition `index` of `generation` landed; whether the generation is visible now (it was
   * the last one missing). A partition of a generation abandoned or deleted meanwhile goes.
   */
  landed(generation: Generation, index: number, partition: LandedPartition): boolean {
    const state = this.states.get(generation.dataset);
    // Counted already (found stored by `notice` between its commit and this call).
    if (state?.complete === generation && generation.landed.has(index)) return true;
    if (state?.pending !== generation) {
      this.store.remove([pathOf(generation, index)]);
      return false;
    }
    generation.landed.set(index, partition);
    if (generation.landed.size < generation.count) return false;
    const replaced = state.complete;
    generation.completedAt = this.clock.now();
    state.complete = generation;
    state.pending = undefined;
    // Generations found older than it (after a restart) were replaced or abandoned.
    for (const [number, g] of state.found ?? []) {
      if (number > generation.number) continue;
      state.found?.delete(number);
      this.removeNow(g);
    }
    if (state.pinned) void this.pinAll(generation, true).catch(() => undefined);
    for (const wake of this.waiting.get(generation.dataset) ?? []) wake();
    // Readers of the generation it replaces finish on it: its partitions stay for their tickets.
    if (replaced) {
      const retiring = state.retiring;
      const cancel = this.timers.after(this.store.graceMs, () => {
        retiring.delete(replaced);
        this.removeNow(replaced);
      });
      retiring.set(replaced, cancel);
    }
    return true;
  }

  /**
   * Until when a ticket issued now for a partition of a visible generation surely reads:
   * a generation replaced from now on stays `graceMs` after (deleted or lost datasets go at once).
   */
  ticketsUntil(): number {
    return this.clock.now() + this.store.graceMs;
  }

  /** How many datasets this node keeps (is home for): visible, being written (none visible yet), lost. */
  counts(): { visible: number; writing: number; lost: number } {
    let visible = 0;
    for (const state of this.states.values()) if (state.complete) visible++;
    return { visible, writing: this.states.size - visible, lost: this.losses.size };
  }

  /**
   * The partitions a dataset kept here still misses, while no generation of it is visible:
   * those of the generation being written (as paths); undefined when one is visible or the
   * dataset is unknown here.
   */
  missing(dataset: FlightPath): FlightPath[] | undefined {
    const state = this.states.get(dataset);
    const pending = state?.pending;
    if (!pending || state.complete) return undefined;
    const out: FlightPath[] = [];
    for (let i = 0; i < pending.count; i++) if (!pending.landed.has(i)) out.push(pathOf(pending, i));
    return out;
  }

  /** Whether a dataset is known here (visible, or being written, or stored before a restart). */
  has(dataset: FlightPath): boolean {
    return this.losses.has(dataset) || this.state(dataset) !== undefined;
  }

  /** The visible generation of a dataset; NOT_FOUND naming the missing partitions while none is. */
  visible(dataset: FlightPath): Generation {
    const state = this.state(dataset);
    if (state?.pending) this.notice(state);
    if (state?.complete) return state.complete;
    const pending = state?.pending;
    const loss = this.losses.get(dataset);
    if (!pending && loss) {
      const why = loss.node ? `its node ${loss.node} left` : LOSS_WORDS[loss.reason];
      throw new NotFoundError(
        `dataset "${dataset}" lost partition ${loss.index} of ${loss.count} (${why}); recompute it`,
      );
    }
    if (!pending) throw new NotFoundError(`dataset "${dataset}" not found`);
    const missing: number[] = [];
    for (let i = 0; i < pending.count && missing.length < 20; i++) if (!pending.landed.has(i)) missing.push(i);
    const more = pending.count - pending.landed.size - missing.length;
    throw new NotFoundError(
      `dataset "${dataset}" is not complete: ${pending.landed.size} of ${pending.count} partitions have landed; ` +
        `missing partition${missing.length + more > 1 ? 's' : ''} ${missing.join(', ')}${more > 0 ? ` and ${more} more` : ''}`,
      // Its writers are still at it: a reader may look again shortly.
      retryHere(INCOMPLETE_RETRY_MS),
    );
  }

  /** The visible datasets at or under a normalised prefix, in path order. */
  listVisible(prefix: string): Generation[] {
    const out: Generation[] = [];
    for (const [path, state] of this.states) {
      if (!state.complete) continue;
      if (prefix === '' || path === prefix || path.startsWith(`${prefix}/`)) out.push(state.complete);
    }
    return out.sort((a, b) => (a.dataset < b.dataset ? -1 : a.dataset > b.dataset ? 1 : 0));
  }

  /**
   * Waits up to `waitMs` for a dataset being written to become visible (a read with
   * `x-tierflight-wait-ms`), or until `signal` aborts; at once when it is visible or unknown.
   * RESOURCE_EXHAUSTED past MAX_WAITERS reads waiting at once.
   */
  async waitVisible(dataset: FlightPath, waitMs: number, signal?: AbortSignal): Promise<void> {
    const state = this.state(dataset);
    if (!state?.pending || state.complete || waitMs <= 0) return;
    if (this.waiters >= MAX_WAITERS) {
      throw new ResourceExhaustedError(`too many reads are waiting for datasets to complete (at most ${MAX_WAITERS})`);
    }
    const done = new AbortController();
    const stop = signal ? AbortSignal.any([signal, done.signal]) : done.signal;
    let set = this.waiting.get(dataset);
    if (!set) this.waiting.set(dataset, (set = new Set()));
    const wake = () => done.abort();
    set.add(wake);
    this.waiters++;
    try {
      await this.clock.sleep(waitMs, stop);
    } finally {
      this.waiters--;
      set.delete(wake);
      if (set.size === 0 && this.waiting.get(dataset) === set) this.waiting.delete(dataset);
    }
  }

  /** Pins (or unpins) a dataset: its partitions, and those of every generation after; whether it was pinned before. */
  async pin(dataset: FlightPath, pinned: boolean): Promise<boolean> {
    const state = this.state(dataset);
    if (!state?.complete) {
      if (pinned) this.visible(dataset); // NOT_FOUND, saying why
      return false;
    }
    const was = state.pinned === true;
    state.pinned = pinned;
    await this.pinAll(state.complete, pinned);
    return was;
  }

  private async pinAll(generation: Generation, pinned: boolean): Promise<void> {
    await Promise.all([...generation.landed.keys()].map((i) => this.store.pin(pathOf(generation, i), pinned)));
  }

  /** Deletes a dataset and its partitions; whether it was known. */
  drop(dataset: FlightPath): boolean {
    const lost = this.losses.delete(dataset);
    const state = this.state(dataset);
    if (!state) return lost;
    this.states.delete(dataset);
    // Deleted: the generations kept for tickets go now too, as a deleted flight's graces end.
    for (const [generation, cancel] of state.retiring) {
      cancel();
      this.removeNow(generation);
    }
    for (const generation of [state.complete, state.pending, ...(state.found?.values() ?? [])])
      if (generation) this.removeNow(generation);
    return true;
  }

  /** Deletes every dataset at or under a normalised prefix; how many. */
  dropUnder(prefix: string): number {
    const under = (p: string) => prefix === '' || p === prefix || p.startsWith(`${prefix}/`);
    for (const p of [...this.losses.keys()]) if (under(p)) this.losses.delete(p);
    const paths = [...this.states.keys()].filter(under);
    for (const path of paths) this.drop(path as FlightPath);
    return paths.length;
  }

  /** Stops the timers that remove replaced generations (shutdown). */
  close(): void {
    this.timers.stop();
  }

  private removeNow(generation: Generation): void {
    const paths = [...generation.landed.keys()].map((i) => pathOf(generation, i));
    if (paths.length > 0) this.store.remove(paths);
  }

  /** A dataset's state: the one kept here, or one rebuilt from its stored partitions (after a restart). */
  private state(dataset: FlightPath): DatasetState | undefined {
    return this.states.get(dataset) ?? (this.rebuilds ? this.rebuild(dataset) : undefined);
  }

  /**
   * Finds a dataset again from its stored partitions (after a restart).
   */
  private rebuild(dataset: FlightPath): DatasetState | undefined {
    this.recover(
      dataset,
      this.store.stored(dataset).map((path) => ({ path, landed: {} })),
    );
    return this.states.get(dataset);
  }

  /**
   * Merges partitions found stored (here after a restart, or on other members: reported to
   * this node as the dataset's home) into what is known of the dataset; their paths name
   * generation, index and count. The newest complete generation is visible, a newer
   * incomplete one is being written, and older generations are leftovers of replaced or
   * abandoned ones: they go (not those kept for tickets). Partitions of a dataset lost
   * since go too, unless it was written again.
   */
  recover(dataset: FlightPath, found: readonly { path: FlightPath; landed: LandedPartition; schema?: Buffer }[]): void {
    if (this.losses.has(dataset)) {
      if (found.length > 0) this.store.remove(found.map((f) => f.path));
      return;
    }
    const state = this.states.get(dataset);
    const generations = new Map<number, Generation>();
    for (const g of [state?.complete, state?.pending, ...(state?.found?.values() ?? [])])
      if (g) generations.set(g.number, g);
    const kept = new Set([...(state?.retiring.keys() ?? [])].map((g) => g.number));
    const misfits: FlightPath[] = [];
    for (const { path, landed, schema } of found) {
      const name = partitionOf(path);
      if (!name || name.dataset !== dataset || kept.has(name.generation)) continue;
      let g = generations.get(name.generation);
      if (!g) {
        g = { dataset, number: name.generation, count: name.count, landed: new Map() };
        generations.set(name.generation, g);
      }
      if (g.count !== name.count)
        misfits.push(path); // a partition that does not fit its generation
      else if (!g.landed.has(name.index)) g.landed.set(name.index, landed);
      if (schema) g.schema ??= schema;
    }
    if (misfits.length > 0) this.store.remove(misfits);
    if (generations.size === 0) return;
    const newest = [...generations.values()].sort((a, b) => b.number - a.number);
    const complete = newest.find((g) => g.landed.size === g.count);
    const pending = newest[0] !== complete ? newest[0] : undefined;
    // Older than the visible generation: replaced or abandoned. Others may yet complete.
    const older = new Map<number, Generation>();
    for (const g of newest) {
      if (g === complete || g === pending) continue;
      if (complete && g.number < complete.number) this.removeNow(g);
      else older.set(g.number, g);
    }
    if (complete) complete.completedAt ??= this.clock.now();
    this.states.set(dataset, {
      ...(complete ? { complete } : {}),
      ...(pending ? { pending } : {}),
      ...(older.size > 0 ? { found: older } : {}),
      retiring: state?.retiring ?? new Map(),
      ...(state?.pinned ? { pinned: true } : {}),
      next: Math.max(state?.next ?? 1, (newest[0]?.number ?? 0) + 1),
    });
    if (complete && complete !== state?.complete) for (const wake of this.waiting.get(dataset) ?? []) wake();
  }

  /**
   * Forgets the datasets `keep` says no (this node is no longer their home: placement moved
   * them), leaving their partitions where they are for the new home to find.
   */
  forget(keep: (dataset: FlightPath) => boolean): void {
    for (const [dataset, state] of [...this.states]) {
      if (keep(dataset as FlightPath)) continue;
      for (const cancel of state.retiring.values()) cancel();
      this.states.delete(dataset);
    }
  }

  /**
   * A generation being written that was found after a restart: partitions the stores'
   * listing has found since count as landed too (it may complete the generation).
   */
  private notice(state: DatasetState): void {
    const pending = state.pending;
    if (!pending || pending.landed.size === pending.count) return;
    const stored = new Set<string>(this.store.stored(pending.dataset));
    for (let i = 0; i < pending.count; i++) {
      if (!pending.landed.has(i) && stored.has(pathOf(pending, i))) this.landed(pending, i, {});
    }
  }
}

/** Where a partition of a generation is stored. */
function pathOf(generation: Generation, index: number): FlightPath {
  return partitionPath(generation.dataset, generation.number, index, generation.count);
}
