import { Counter, Gauge, type Registry } from 'prom-client';
import type { Job, JobRunner } from '../jobs/runner.js';

/** Job metrics (DESIGN §6, §7): items by outcome and bytes per job kind and target. */
export class JobMetrics {
  private readonly items: Counter<'kind' | 'target' | 'outcome'>;
  private readonly bytes: Counter<'kind' | 'target'>;

  constructor(registry: Registry) {
    this.items = new Counter({
      name: 'tierflight_job_items_total',
      help: 'Flights a backfill or prefetch job processed, by kind, target (class or prefix) and outcome (uploaded, restored, skipped, failed)',
      labelNames: ['kind', 'target', 'outcome'],
      registers: [registry],
    });
    this.bytes = new Counter({
      name: 'tierflight_job_bytes_total',
      help: 'Bytes backfill jobs uploaded and prefetch jobs restored, by kind and target',
      labelNames: ['kind', 'target'],
      registers: [registry],
    });
  }

  readonly item = (job: Job, outcome: string, bytes: number): void => {
    this.items.inc({ kind: job.kind, target: job.target, outcome });
    if (bytes > 0) this.bytes.inc({ kind: job.kind, target: job.target }, bytes);
  };
}

/** Running jobs and how long their checkpoints stood still, read from the runner at scrape time. */
export function registerJobGauges(registry: Registry, runner: JobRunner): void {
  new Gauge({
    name: 'tierflight_jobs_running',
    help: 'Jobs running (or paused because their store is down), by kind',
    labelNames: ['kind'],
    registers: [registry],
    collect() {
      this.reset();
      for (const kind of ['backfill', 'prefetch']) this.set({ kind }, 0);
      for (const job of runner.running()) this.inc({ kind: job.kind });
    },
  });
  new Gauge({
    name: 'tierflight_job_checkpoint_age_seconds',
    help: 'Seconds since the oldest-moving running job of each kind last advanced its checkpoint (stuck or paused jobs grow it)',
    labelNames: ['kind'],
    registers: [registry],
    collect() {
      this.reset();
      for (const kind of ['backfill', 'prefetch']) {
        const ages = runner
          .running()
          .filter((j) => j.kind === kind)
          .map((j) => j.checkpointAge());
        this.set({ kind }, ages.length > 0 ? Math.max(...ages) : 0);
      }
    },
  });
}
