import { inSpan } from '../core/trace.js';
import { randomBytes } from 'node:crypto';
import { retry } from '../core/retry.js';
import { Timers } from '../core/timers.js';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/log.js';

export type JobKind = 'backfill' | 'prefetch';

/** What one item of a job came to. */
export type ItemOutcome = 'uploaded' | 'restored' | 'skipped';

/** One unit of a job: a flight to upload or restore, newest first. */
export interface JobItem {
  path: string;
  /** When the flight was written (ms); the checkpoint is the oldest one reached in order. */
  createdAt: number;
  /** Does the work; resolves with what happened and the bytes moved. */
  run(): Promise<{ outcome: ItemOutcome; bytes: number }>;
}

/** A job's progress, as `backfill`, `prefetch` and `backfill-status` stream it (DESIGN §6). */
export interface JobProgress {
  id: string;
  kind: JobKind;
  target: string;
  state: 'running' | 'paused' | 'done' | 'stopped';
  total: number;
  processed: number;
  uploaded: number;
  restored: number;
  skipped: number;
  failed: number;
  bytes: number;
  /** RFC 3339: every flight created at or after this is done; `resume` with it continues from here. */
  checkpoint: string | null;
  /** Why the job is paused (its store cannot be reached). */
  message?: string;
  done: boolean;
}

/** Decides whether a failure means the store is down (pause and retry) or the item failed (count it, go on). */
export type IsStoreDown = (err: unknown) => boolean;

const ITEM_ATTEMPTS = 3;
const CHECKPOINT_LOG_MS = 5_000;

/**
 * One job: its items worked through `concurrency` at a time, newest first, with the
 * checkpoint advancing only over items finished in order, so resuming from it never skips
 * one. A failing item is retried with backoff and then counted as failed; a store that is
 * down pauses the whole job (it says so) until it answers or the job is stopped.
 */
export class Job {
  readonly id = randomBytes(6).toString('hex');
  private readonly progress: JobProgress;
  private readonly finishedAt: boolean[];
  private next = 0;
  private inOrder = 0;
  private stopped = false;
  /** When the checkpoint last moved (ms, job clock): a job whose checkpoint stands still is stuck. */
  private movedAt: number;
  private readonly listeners = new Set<() => void>();
  readonly finished: Promise<void>;

  constructor(
    readonly kind: JobKind,
    readonly target: string,
    private readonly items: readonly JobItem[],
    concurrency: number,
    private readonly storeDown: IsStoreDown,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly observe: (job: Job, outcome: ItemOutcome | 'failed', bytes: number) => void,
  ) {
    this.finishedAt = items.map(() => false);
    this.movedAt = clock.now();
    this.progress = {
      id: this.id,
      kind,
      target,
      state: 'running',
      total: items.length,
      processed: 0,
      uploaded: 0,
      restored: 0,
      skipped: 0,
      failed: 0,
      bytes: 0,
      checkpoint: null,
      done: false,
    };
    const workers = Array.from({ length: Math.max(1, Math.min(concurrency, items.length || 1)) }, () => this.work());
    const timers = new Timers(clock);
    timers.every(CHECKPOINT_LOG_MS, () => this.logCheckpoint());
    this.finished = Promise.all(workers).then(() => {
      timers.stop();
      this.progress.state = this.stopped ? 'stopped' : 'done';
      this.progress.done = true;
      this.logCheckpoint();
      this.changed();
    });
  }

  /** Seconds since the checkpoint last moved (0 for a finished job). */
  checkpointAge(): number {
    return this.progress.done ? 0 : (this.clock.now() - this.movedAt) / 1000;
  }

  snapshot(): JobProgress {
    return { ...this.progress };
  }

  /** Stops taking new items; the ones running finish. */
  stop(): void {
    this.stopped = true;
    this.changed();
  }

  /** Progress snapshots as they change (at most every `minMs`), ending with the final one. */
  async *watch(minMs = 250): AsyncGenerator<JobProgress> {
    let last = '';
    for (;;) {
      const snap = this.snapshot();
      const text = JSON.stringify(snap);
      if (text !== last) {
        last = text;
        yield snap;
      }
      if (snap.done) return;
      // Until the job changes (or a second passes), then at most every `minMs`.
      const changed = new AbortController();
      const wake = () => changed.abort();
      this.listeners.add(wake);
      await this.clock.sleep(1_000, changed.signal);
      this.listeners.delete(wake);
      await this.clock.sleep(minMs);
    }
  }

  private async work(): Promise<void> {
    while (!this.stopped && this.next < this.items.length) {
      const index = this.next++;
      const item = this.items[index] as JobItem;
      const result = await inSpan(`job ${this.kind} item`, { 'tierflight.path': item.path }, () => this.attempt(item));
      if (result === undefined) return; // stopped while paused
      const p = this.progress;
      p.processed++;
      if (result === 'failed') p.failed++;
      else {
        p[result.outcome]++;
        p.bytes += result.bytes;
      }
      this.observe(this, result === 'failed' ? 'failed' : result.outcome, result === 'failed' ? 0 : result.bytes);
      this.finishedAt[index] = true;
      while (this.inOrder < this.items.length && this.finishedAt[this.inOrder]) this.inOrder++;
      const reached = this.items[this.inOrder - 1];
      const checkpoint = reached ? new Date(reached.createdAt).toISOString() : null;
      if (checkpoint !== p.checkpoint) this.movedAt = this.clock.now();
      p.checkpoint = checkpoint;
      this.changed();
    }
  }

  /**
   * Runs an item, retried with backoff on the clock: while the store is down the job
   * pauses (and says so) until it answers or the job is stopped (undefined); another failure
   * is retried up to ITEM_ATTEMPTS times in all, then counted as failed.
   */
  private async attempt(item: JobItem): Promise<{ outcome: ItemOutcome; bytes: number } | 'failed' | undefined> {
    let failures = 0;
    const retryable = (err: unknown): boolean => {
      if (!this.storeDown(err)) return ++failures < ITEM_ATTEMPTS;
      const message = (err as Error).message;
      if (this.progress.state !== 'paused')
        this.log.warn({ job: this.id, kind: this.kind, err: message }, 'job paused');
      this.progress.state = 'paused';
      this.progress.message = `paused: the store cannot be reached (${message}); retrying`;
      this.changed();
      return !this.stopped;
    };
    try {
      const result = await retry(() => item.run(), { clock: this.clock, retryable });
      if (this.progress.state === 'paused') {
        this.progress.state = 'running';
        delete this.progress.message;
        this.log.info({ job: this.id, kind: this.kind }, 'the store answers again: job resumed');
      }
      return result;
    } catch (err) {
      if (this.storeDown(err)) return undefined; // stopped while paused
      this.log.warn({ job: this.id, kind: this.kind, path: item.path, err: (err as Error).message }, 'job item failed');
      return 'failed';
    }
  }

  private logCheckpoint(): void {
    const p = this.progress;
    this.log.info(
      {
        job: p.id,
        kind: p.kind,
        target: p.target,
        state: p.state,
        processed: p.processed,
        total: p.total,
        checkpoint: p.checkpoint,
      },
      'job checkpoint: resume with this checkpoint after a crash',
    );
  }

  private changed(): void {
    for (const wake of [...this.listeners]) wake();
  }
}

/** The jobs of a server: started by actions, found again by id, stopped at shutdown. */
export class JobRunner {
  private readonly jobs = new Map<string, Job>();

  constructor(
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly observe: (job: Job, outcome: ItemOutcome | 'failed', bytes: number) => void = () => undefined,
  ) {}

  start(kind: JobKind, target: string, items: readonly JobItem[], concurrency: number, storeDown: IsStoreDown): Job {
    const job = new Job(kind, target, items, concurrency, storeDown, this.clock, this.log, this.observe);
    this.jobs.set(job.id, job);
    this.log.info({ job: job.id, kind, target, items: items.length, concurrency }, 'job started');
    return job;
  }

  get(id: string): Job | undefined {
    return this.jobs.get(id);
  }

  running(): Job[] {
    return [...this.jobs.values()].filter((j) => !j.snapshot().done);
  }

  /** Graceful stop at shutdown: no new items; waits for the ones running. */
  async close(): Promise<void> {
    for (const job of this.jobs.values()) job.stop();
    await Promise.all([...this.jobs.values()].map((j) => j.finished));
  }
}
