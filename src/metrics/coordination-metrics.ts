import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { CoordinationEvent, Reservations } from '../coordination/index.js';

/**
 * Metrics of cache-fill coordination (DESIGN §6, §7): reservations held and how reserve
 * calls ended, releases, calls waiting and how long they waited, and how many waiters each
 * landing put served (the herd that did not compute). Labels are fixed words only.
 */
export function registerCoordinationMetrics(registry: Registry, reservations: Reservations): void {
  new Gauge({
    name: 'tierflight_reservations_held',
    help: 'Live cache-fill reservations in the reservation store (all nodes sharing it), counted at scrape',
    registers: [registry],
    async collect() {
      this.set(await reservations.refreshCount());
    },
  });
  new Gauge({
    name: 'tierflight_reservation_waiters',
    help: 'Calls waiting for a reserved flight to land (x-tierflight-wait-ms, PollFlightInfo)',
    registers: [registry],
    collect() {
      this.set(reservations.waiterCount);
    },
  });
  const reserves = new Counter({
    name: 'tierflight_reservations_total',
    help: 'reserve calls by outcome: acquired (free path), extended (same owner), expired (took over an expired one), held (another owner holds it)',
    labelNames: ['outcome'],
    registers: [registry],
  });
  const releases = new Counter({
    name: 'tierflight_reservation_releases_total',
    help: 'Reservations released, by what released them (the release action or a put naming its owner) and outcome',
    labelNames: ['by', 'outcome'],
    registers: [registry],
  });
  const waits = new Histogram({
    name: 'tierflight_reservation_wait_seconds',
    help: 'Time calls waited for a reserved flight, by how the wait ended (landed, timeout, released, cancelled by the client, ended by CancelFlightInfo, not_reserved)',
    labelNames: ['outcome'],
    buckets: [0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
    registers: [registry],
  });
  const herd = new Histogram({
    name: 'tierflight_reservation_herd_size',
    help: 'Waiting calls one landing put served at once: each one a computation the herd did not repeat',
    buckets: [1, 2, 5, 10, 20, 50, 100, 500, 1000],
    registers: [registry],
  });
  const refusals = new Counter({
    name: 'tierflight_reservation_refusals_total',
    help: 'Reserves and waits refused by a bound: max_waiters, max_waiters_per_user (one user), max_per_user (held reservations)',
    labelNames: ['reason'],
    registers: [registry],
  });
  for (const reason of ['max_waiters', 'max_waiters_per_user', 'max_per_user']) refusals.inc({ reason }, 0);
  for (const outcome of ['acquired', 'extended', 'expired', 'held']) reserves.inc({ outcome }, 0);
  reservations.observe((e: CoordinationEvent) => {
    switch (e.type) {
      case 'reserve':
        reserves.inc({ outcome: e.outcome });
        return;
      case 'release':
        releases.inc({ by: e.byPut ? 'put' : 'action', outcome: e.released ? 'released' : 'held_by_other' });
        return;
      case 'wait':
        waits.observe({ outcome: e.outcome.replace('-', '_') }, e.seconds);
        return;
      case 'herd':
        herd.observe(e.waiters);
        return;
      case 'refused':
        refusals.inc({ reason: e.reason });
        return;
    }
  });
}
