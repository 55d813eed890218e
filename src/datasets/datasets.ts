import type { Clock } from '../core/clock.js';
import { partitionPath, type FlightPath } from '../core/path.js';
import { Timers } from '../core/timers.js';
import { InvalidArgumentError, NotFoundError } from '../errors.js';

/** A request header: this DoPut writes partition `<i>` of `<n>` of the dataset at its path. */
export const PARTITION_HEADER = 'x-tierflight-partition';
/** The most partitions one dataset may have. */
export const MAX_PARTITIONS = 4096;

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

/** What a landed partition is: the version its put wrote, and its totals. */
export interface LandedPartition {
  tag: string;
  records: number;
  bytes: number;
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

/** How the datasets remove the partitions of generations that are gone (the storage manager). */
export interface PartitionRemover {
  remove(path: FlightPath): void;
  /** How long a replaced generation's partitions stay for the tickets issued for them (`server.ticketGrace`). */
  readonly graceMs: number;
}

interface DatasetState {
  /** The visible generation: every partition landed. */
  complete?: Generation;
  /** The generation being written (partitions landing in any order). */
  pending?: Generation;
  /** Replaced generations kept for their tickets, each with the cancel of its removal. */
  retiring: Map<Generation, () => void>;
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
  private readonly timers: Timers;

  constructor(
    private readonly clock: Clock,
    private readonly remover: PartitionRemover,
  ) {
    this.timers = new Timers(clock);
  }

  /** The generation a put of partition `index` of `count` belongs to (a new one when needed). */
  begin(dataset: FlightPath, index: number, count: number): Generation {
    let state = this.states.get(dataset);
    if (!state) this.states.set(dataset, (state = { next: 1, retiring: new Map() }));
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
    if (state?.pending !== generation) {
      this.remover.remove(partitionPath(generation.dataset, generation.number, index));
      return false;
    }
    generation.landed.set(index, partition);
    if (generation.landed.size < generation.count) return false;
    const replaced = state.complete;
    generation.completedAt = this.clock.now();
    state.complete = generation;
    state.pending = undefined;
    // Readers of the generation it replaces finish on it: its partitions stay for their tickets.
    if (replaced) {
      const retiring = state.retiring;
      const cancel = this.timers.after(this.remover.graceMs, () => {
        retiring.delete(replaced);
        this.removeNow(replaced);
      });
      retiring.set(replaced, cancel);
    }
    return true;
  }

  /** Whether a dataset is known here (visible, or being written). */
  has(dataset: string): boolean {
    return this.states.has(dataset);
  }

  /** The visible generation of a dataset; NOT_FOUND naming the missing partitions while none is. */
  visible(dataset: FlightPath): Generation {
    const state = this.states.get(dataset);
    if (state?.complete) return state.complete;
    const pending = state?.pending;
    if (!pending) throw new NotFoundError(`dataset "${dataset}" not found`);
    const missing: number[] = [];
    for (let i = 0; i < pending.count && missing.length < 20; i++) if (!pending.landed.has(i)) missing.push(i);
    const more = pending.count - pending.landed.size - missing.length;
    throw new NotFoundError(
      `dataset "${dataset}" is not complete: ${pending.landed.size} of ${pending.count} partitions have landed; ` +
        `missing partition${missing.length + more > 1 ? 's' : ''} ${missing.join(', ')}${more > 0 ? ` and ${more} more` : ''}`,
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

  /** Deletes a dataset and its partitions; whether it was known. */
  drop(dataset: string): boolean {
    const state = this.states.get(dataset);
    if (!state) return false;
    this.states.delete(dataset);
    // Deleted: the generations kept for tickets go now too, as a deleted flight's graces end.
    for (const [generation, cancel] of state.retiring) {
      cancel();
      this.removeNow(generation);
    }
    for (const generation of [state.complete, state.pending]) if (generation) this.removeNow(generation);
    return true;
  }

  /** Deletes every dataset at or under a normalised prefix; how many. */
  dropUnder(prefix: string): number {
    const paths = [...this.states.keys()].filter((p) => prefix === '' || p === prefix || p.startsWith(`${prefix}/`));
    for (const path of paths) this.drop(path);
    return paths.length;
  }

  /** Stops the timers that remove replaced generations (shutdown). */
  close(): void {
    this.timers.stop();
  }

  private removeNow(generation: Generation): void {
    for (const i of generation.landed.keys())
      this.remover.remove(partitionPath(generation.dataset, generation.number, i));
  }
}
