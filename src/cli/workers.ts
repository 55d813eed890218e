import { fork, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { spoolDirectory } from '../config/load.js';
import type { Config } from '../config/schema.js';
import type { Logger } from '../core/log.js';

/**
 * `tierflight serve --workers N` (DESIGN §8, many cores on one machine): N processes as a
 * local cluster. Worker i listens on the listen port + i (worker 0 on the listen port
 * itself, the one clients are given), gets 1/N of every storage type's capacity and its own
 * `worker-i` folder in each tier directory and spool, and its members are the N workers, so
 * clients that follow endpoint locations read from the worker that holds the flight. The
 * workers keep reservations in memory, each for the paths it owns.
 */
export function workerConfig(config: Config, index: number, count: number): Config {
  if (config.cluster)
    throw new Error('--workers builds its own cluster: remove `cluster` from the config, or run without --workers');
  const { host, port } = splitHostPort(config.server.listen);
  const memberHost = reachableHost(host, config.server.advertise);
  const scheme = config.server.tls ? 'grpc+tls' : 'grpc+tcp';
  const types = config.storageTypes;
  const share = (capacity: number) => Math.floor(capacity / count);
  const dir = (p: string) => path.join(p, `worker-${index}`);
  const spool = spoolDirectory(config);
  const metrics = config.server.metrics === undefined ? undefined : splitHostPort(config.server.metrics);
  return {
    ...config,
    server: {
      ...config.server,
      listen: `${host}:${port + index}`,
      // Endpoints name the worker itself (members' locations), not the shared entry port.
      advertise: undefined,
      ...(metrics ? { metrics: `${metrics.host}:${metrics.port + index}` } : {}),
      ...(spool !== undefined ? { spool: `${spool}-worker-${index}` } : {}),
    },
    storageTypes: {
      ...(types.memory ? { memory: { capacity: share(types.memory.capacity) } } : {}),
      ...(types.disk_mapped
        ? { disk_mapped: { path: dir(types.disk_mapped.path), capacity: share(types.disk_mapped.capacity) } }
        : {}),
      ...(types.disk ? { disk: { path: dir(types.disk.path), capacity: share(types.disk.capacity) } } : {}),
    },
    cluster: {
      self: `worker-${index}`,
      members: Array.from({ length: count }, (_, i) => ({
        name: `worker-${i}`,
        location: `${scheme}://${memberHost}:${port + i}`,
      })),
      probeEvery: 1_000,
    },
  };
}

/** How many workers `--workers` without a number means: one per core. */
export function defaultWorkers(): number {
  return os.availableParallelism();
}

/**
 * Runs the workers and watches them: SIGTERM and SIGINT stop them all (each drains as a
 * server does) and then this process; SIGHUP reloads each; a worker that dies is started
 * again after a second.
 */
export function superviseWorkers(count: number, args: readonly string[], logger: Logger): void {
  const children: (ChildProcess | undefined)[] = [];
  let stopping = false;
  const start = (i: number): void => {
    const child = fork(process.argv[1] as string, [...args, '--worker', `${i}/${count}`], {
      execArgv: process.execArgv,
      stdio: 'inherit',
    });
    children[i] = child;
    child.on('exit', (code, signal) => {
      children[i] = undefined;
      if (stopping) {
        if (children.every((c) => c === undefined)) {
          logger.info('all workers stopped');
          process.exit(0);
        }
        return;
      }
      logger.error({ worker: i, code, signal }, 'a worker exited; starting it again in 1 s');
      setTimeout(() => !stopping && start(i), 1_000);
    });
  };
  for (let i = 0; i < count; i++) start(i);
  logger.info({ workers: count }, 'workers started');
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping the workers');
    for (const c of children) c?.kill('SIGTERM');
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGHUP', () => {
    for (const c of children) c?.kill('SIGHUP');
  });
}

function splitHostPort(hostPort: string): { host: string; port: number } {
  const colon = hostPort.lastIndexOf(':');
  return { host: hostPort.slice(0, colon), port: Number(hostPort.slice(colon + 1)) };
}

/** The host other workers reach this one at: the listen host, unless it listens on every address. */
function reachableHost(host: string, advertise: string | undefined): string {
  if (host !== '0.0.0.0' && host !== '::' && host !== '[::]') return host;
  const advertised = advertise && /^grpc(?:\+\w+)?:\/\/(.+):\d+$/.exec(advertise)?.[1];
  return advertised || '127.0.0.1';
}
