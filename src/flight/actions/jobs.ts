import { DurableStoreError } from '../../durable/durable-store.js';
import { InvalidArgumentError, NotFoundError } from '../../errors.js';
import type { Job } from '../../jobs/runner.js';
import type { ActionVerb } from './registry.js';
import { parseBody } from './registry.js';

/** A store that does not answer pauses a job; anything else fails just the item. */
const storeDown = (err: unknown): boolean => err instanceof DurableStoreError && err.kind === 'transient';

function concurrencyOf(action: string, value: unknown): number {
  if (value === undefined) return 4;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 64) {
    throw new InvalidArgumentError(`action "${action}": concurrency is a whole number from 1 to 64`);
  }
  return value;
}

/** A time in the body: RFC 3339 (as checkpoints are) or milliseconds since the epoch. */
function timeOf(action: string, key: string, value: unknown): number | undefined {
  if (value === undefined) return undefined;
  const ms = typeof value === 'number' ? value : typeof value === 'string' ? Date.parse(value) : Number.NaN;
  if (!Number.isFinite(ms)) throw new InvalidArgumentError(`action "${action}": "${key}" is an RFC 3339 time`);
  return ms;
}

/** The job's progress as results, until it is done; the job goes on if the client leaves. */
async function* follow(job: Job): AsyncGenerator<unknown> {
  yield* job.watch();
}

export const backfillVerb: ActionVerb = {
  type: 'backfill',
  description:
    "Write durable copies of a class's flights that lack one, newest first, skipping objects already stored. Body: " +
    '{"class", "cutoff"?, "concurrency"? (4), "resume"? (a checkpoint)}. Streams {id, processed, uploaded, skipped, ' +
    'failed, bytes, checkpoint, ...} and a last result with "done": true; backfill-status {"id"} reattaches.',
  permission: 'admin',
  async *run(body, { manager, jobs, log, peer, user }) {
    const doc = parseBody('backfill', body, ['class']);
    const before = Math.min(
      timeOf('backfill', 'cutoff', doc.cutoff) ?? Number.POSITIVE_INFINITY,
      timeOf('backfill', 'resume', doc.resume) ?? Number.POSITIVE_INFINITY,
    );
    const items = manager.backfillItems(doc.class, before);
    const job = jobs.start('backfill', doc.class, items, concurrencyOf('backfill', doc.concurrency), storeDown);
    log.info({ action: 'backfill', class: doc.class, job: job.id, items: items.length, peer, user }, 'backfill');
    yield* follow(job);
  },
};

export const backfillStatusVerb: ActionVerb = {
  type: 'backfill-status',
  description: 'Reattach to a running or finished job (backfill or prefetch). Body: {"id"}. Streams its progress.',
  permission: 'admin',
  async *run(body, { jobs }) {
    const { id } = parseBody('backfill-status', body, ['id']);
    const job = jobs.get(id);
    if (!job)
      throw new NotFoundError(
        `no job "${id}" on this server (jobs do not survive a restart: resume from its checkpoint)`,
      );
    yield* follow(job);
  },
};

export const prefetchVerb: ActionVerb = {
  type: 'prefetch',
  description:
    'Restore the durable-only flights under a prefix into their first tier, newest first. Body: {"prefix", ' +
    '"concurrency"? (4)}. Streams progress like backfill.',
  permission: 'admin',
  target: (body) => parseBody('prefetch', body, ['prefix']).prefix,
  async *run(body, { manager, jobs, log, peer, user }) {
    const doc = parseBody('prefetch', body, ['prefix']);
    const items = manager.prefetchItems(doc.prefix);
    const job = jobs.start('prefetch', doc.prefix, items, concurrencyOf('prefetch', doc.concurrency), storeDown);
    log.info({ action: 'prefetch', prefix: doc.prefix, job: job.id, items: items.length, peer, user }, 'prefetch');
    yield* follow(job);
  },
};
