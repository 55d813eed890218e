import { keepsLive } from '../core/garbage.js';
import type { Config } from '../config/schema.js';
import { Background } from '../core/background.js';
import type { Clock } from '../core/clock.js';
import { silentLogger, type Logger } from '../core/log.js';
import type { DurableStore } from '../durable/durable-store.js';
import { Durability } from '../durability/durability.js';
import { Recovery } from '../durability/recovery.js';
import { UnrecoveredStores } from '../durability/unrecovered-stores.js';
import { Routes } from '../routing/routes.js';
import { Catalog } from './catalog.js';
import { PlacementEvents } from './events.js';
import { NO_LANDING, type Landing } from './landing.js';
import { Ledger } from './ledger.js';
import { Leases } from './leases.js';
import { Puts } from './puts.js';
import { TierMover } from './tier-mover.js';
import { createStorageTypes } from './types/index.js';

export interface ManagerOptions {
  config: Config;
  clock: Clock;
  logger?: Logger;
  /** Where placement events go; subscribe to it (the manager makes one when not given). */
  events?: PlacementEvents;
  /** Durable stores by id (opened from `durableStores` by node/start.ts). */
  durableStores?: ReadonlyMap<string, DurableStore>;
  /** Where weak flights not uploaded by shutdown wait for the next start (`server.spool`). */
  spool?: DurableStore;
  /** Told when a flight lands (the reservations); nobody by default. */
  landing?: Landing;
  /** How long a start waits for a store's listing (LIST_WAIT_MS; tests shorten it). */
  listWaitMs?: number;
}

/** The parts of the storage core, wired. */
export interface StorageCore {
  clock: Clock;
  log: Logger;
  events: PlacementEvents;
  routes: Routes;
  ledger: Ledger;
  durability: Durability;
  unrecovered: UnrecoveredStores;
  catalog: Catalog;
  background: Background;
  mover: TierMover;
  leases: Leases;
  puts: Puts;
  recovery: Recovery;
  /** Stops counting this manager's memory tier as live buffer memory (core/garbage.ts). */
  forgetLive: () => void;
}

/**
 * Builds the storage core in dependency order: first what everything uses (clock, log,
 * placement events, the classes in force, the byte ledger, durability, and the catalog of
 * visible flights with its limits), then the parts built on them (the tier mover, read
 * leases, put sessions, recovery), each given the few parts it calls.
 */
export function buildStorageCore(options: ManagerOptions): StorageCore {
  const background = new Background();

  const { config } = options;
  const clock = options.clock;
  const log = options.logger ?? silentLogger;
  const events =
    options.events ??
    new PlacementEvents((err, event) => log.error({ err, event: event.type }, 'a placement event subscriber failed'));
  const stores = options.durableStores ?? new Map<string, DurableStore>();
  const landing = options.landing ?? NO_LANDING;
  // What everything else uses.
  const routes = new Routes(config.storageClasses);
  const ledger = new Ledger(createStorageTypes(config.storageTypes), log);
  // What the memory tier holds is live buffer memory; what V8 holds beyond it is garbage
  // to collect (core/garbage.ts). Unregistered when the manager closes.
  const memory = ledger.types.get('memory');
  const forgetLive = keepsLive(() => memory?.used ?? 0);
  const durability = new Durability({
    stores,
    ledger,
    events,
    landing,
    clock,
    log,
    spool: options.spool,
  });
  const unrecovered = new UnrecoveredStores(routes);
  const catalog = new Catalog({
    ledger,
    clock,
    log,
    events,
    durability,
    unrecovered,
    landing,
    policies: config.limitPolicies,
  });
  // The parts built on them.
  const mover = new TierMover({ ledger, catalog, events, clock, log, background });
  const leases = new Leases({ ledger, catalog, mover, events, clock, log });
  const puts = new Puts({ ledger, catalog, mover, durability, events, landing, clock, log });
  const recovery = new Recovery({
    stores,
    durability,
    catalog,
    routes,
    unrecovered,
    clock,
    log,
    concurrency: config.server.recoveryConcurrency,
  });
  return {
    clock,
    log,
    events,
    routes,
    ledger,
    durability,
    unrecovered,
    catalog,
    background,
    mover,
    leases,
    puts,
    recovery,
    forgetLive,
  };
}
