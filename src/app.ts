import type { Config } from './config/schema.js';
import { startFlightServer, type FlightServer } from './flight/server.js';
import { startMetricsServer, type MetricsServer } from './metrics/http-server.js';
import { TierflightMetrics } from './metrics/tierflight-metrics.js';
import { createDurableStore } from './durable/index.js';
import { StorageManager } from './storage/manager.js';
import { systemClock, type Clock } from './util/clock.js';
import type { Logger } from './util/log.js';

export interface App {
  readonly manager: StorageManager;
  readonly flight: FlightServer;
  readonly metrics: TierflightMetrics;
  /** The metrics HTTP server, when `server.metrics` is set. */
  readonly metricsServer: MetricsServer | undefined;
  stop(): Promise<void>;
}

/**
 * Features of DESIGN.md that this build does not implement yet. A config that uses one is
 * refused at start with a clear message, rather than silently served without it.
 */
export function unsupportedFeatures(config: Config): string[] {
  const out: string[] = [];
  if (config.server.maxBatchBytes !== undefined)
    out.push('server.maxBatchBytes: batch splitting is not available in this version');
  return out;
}

/**
 * How often housekeeping runs: expiry (expired flights are never served even between
 * sweeps) and moveAfter.
 */
const SWEEP_INTERVAL_MS = 5_000;

export async function startApp(config: Config, logger: Logger, clock: Clock = systemClock): Promise<App> {
  const missing = unsupportedFeatures(config);
  if (missing.length > 0) {
    throw new Error(`this configuration uses features that are not implemented yet:\n  ${missing.join('\n  ')}`);
  }
  const metrics = new TierflightMetrics();
  const durableStores = new Map(config.durableStores.map((s) => [s.id, createDurableStore(s)]));
  const manager = new StorageManager({ config, clock, logger, observer: metrics.observe, durableStores });
  metrics.bind(manager);
  await manager.init();
  let ready = false;
  const metricsServer =
    config.server.metrics === undefined
      ? undefined
      : await startMetricsServer(config.server.metrics, metrics.registry, () => ready, logger);
  let flight: FlightServer;
  try {
    flight = await startFlightServer(config.server, manager, logger, metrics.observeRpc);
  } catch (err) {
    await metricsServer?.stop();
    throw err;
  }
  ready = true;
  const sweeper = setInterval(() => void manager.tick(), SWEEP_INTERVAL_MS);
  sweeper.unref();
  return {
    manager,
    flight,
    metrics,
    metricsServer,
    stop: async () => {
      ready = false;
      clearInterval(sweeper);
      await flight.stop(config.server.shutdownGrace);
      // Weak uploads still queued get the same grace to reach the store.
      await manager.close(config.server.shutdownGrace);
      await metricsServer?.stop();
      logger.info('stopped');
    },
  };
}
