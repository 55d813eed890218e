import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/log.js';
import { Timers } from '../core/timers.js';
import { isTierflightError } from '../errors.js';
import type { StorageManager } from '../storage/manager.js';
import type { ClusterNode } from './cluster-node.js';
import { updatedAtOf } from '../flight/cluster-port.js';

/** How long membership must stay still before flights are handed over (a flapping member moves nothing twice). */
const SETTLE_MS = 1_000;
/** Flights copied to their new owners at once. */
const CONCURRENCY = 8;

/**
 * Keeps each node's flights in step with placement after membership changes (DESIGN §8):
 * - a flight whose path this node no longer owns (a member joined or came back) goes: a
 *   durable one is dropped here (its owner restores it from the store), a non-durable one
 *   is first copied to its primary owner unless that owner has a newer version already;
 * - a durable flight this node owns is read again from the store, so a newer version
 *   another node put meanwhile replaces the one held here (a newer durable version wins).
 * Weak flights whose upload has not finished stay until it has.
 */
export class Handover {
  private readonly timers: Timers;
  /** Runs a pass once membership has stayed still for `settleMs`. */
  private readonly schedule: () => void;
  private running: Promise<void> = Promise.resolve();
  private unsubscribe: (() => void) | undefined;

  constructor(
    private readonly manager: StorageManager,
    private readonly node: ClusterNode,
    private readonly log: Logger,
    clock: Clock,
    settleMs = SETTLE_MS,
  ) {
    this.timers = new Timers(clock);
    this.schedule = this.timers.debounce(settleMs, () => {
      this.running = this.running
        .then(async () => {
          await this.run();
        })
        .catch((err: unknown) => {
          this.log.error({ err: (err as Error).message }, 'cluster handover failed');
        });
    });
  }

  start(): void {
    const offChange = this.node.membership.onChange(() => this.schedule());
    const offResync = this.node.onResync(() => this.schedule());
    this.unsubscribe = () => {
      offChange();
      offResync();
    };
  }

  stop(): Promise<void> {
    this.unsubscribe?.();
    this.timers.stop();
    return this.running;
  }

  /** One pass over every flight held here, and over the durable stores' listings. */
  async run(): Promise<{ handedOver: number; dropped: number; refreshed: number }> {
    const counts = { handedOver: 0, dropped: 0, refreshed: 0 };
    const owns = (path: string, replicas: number) => this.node.owners(path, replicas).some((o) => o.self);
    // Durable flights this node owns now are brought in step from the listings (no object
    // read): a newer version another node put, or a path this node takes over, is read on
    // first use.
    counts.refreshed = await this.manager.refreshFromStores((path, cls) => owns(path, cls.config.replicas));
    const work = this.manager.list('').map((version) => async () => {
      const { path, tag } = version;
      const replicas = version.cls.config.replicas;
      const owners = this.node.owners(path, replicas);
      const durable = version.durable?.state === 'stored';
      if (owners.some((o) => o.self)) return;
      if (durable) {
        if (this.manager.handOver(path, tag)) counts.dropped++;
        return;
      }
      if (version.cls.config.durability !== 'none') return; // its upload is on the way
      const to = owners[0];
      if (!to) return;
      if (!(await this.ownerHasNewer(to, path, version.createdAt))) await this.node.copyFlight(to, path, tag);
      if (this.manager.handOver(path, tag)) counts.handedOver++;
    });
    await runLimited(work, CONCURRENCY, (err) =>
      this.log.warn({ err: (err as Error).message }, 'a flight could not be handed over; it stays here for now'),
    );
    if (counts.handedOver + counts.dropped + counts.refreshed > 0)
      this.log.info(counts, 'flights handed over after a membership change');
    return counts;
  }

  private async ownerHasNewer(to: Parameters<ClusterNode['flightInfo']>[0], path: string, createdAt: number) {
    try {
      return updatedAtOf(await this.node.flightInfo(to, path.split('/'), {})) >= createdAt;
    } catch (err) {
      if (isTierflightError(err) && err.code === 'NOT_FOUND') return false;
      throw err;
    }
  }
}

async function runLimited(work: (() => Promise<void>)[], limit: number, onError: (err: unknown) => void) {
  let next = 0;
  const worker = async () => {
    while (next < work.length) {
      const job = work[next++] as () => Promise<void>;
      await job().catch(onError);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, work.length) }, worker));
}
