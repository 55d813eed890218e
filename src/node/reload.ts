import { ConfigError, loadConfigFile, spoolDirectory } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { lockDirectories, type DirectoryLock } from '../core/directory-lock.js';
import type { Logger } from '../core/log.js';
import { FilesystemStore } from '../durable/filesystem-store.js';
import type { MetricsServer } from '../metrics/http-server.js';
import type { NodeParts } from './compose.js';

/** The settings a running node cannot change: a reload that changes one is refused, and nothing changes. */
const RESTART_ONLY: readonly { name: string; of: (c: Config) => unknown }[] = [
  { name: 'storageTypes', of: (c) => c.storageTypes },
  { name: 'durableStores', of: (c) => c.durableStores },
  { name: 'server', of: (c) => c.server },
  { name: 'reservations.store', of: (c) => c.reservations.store },
  { name: 'cluster', of: (c) => c.cluster },
];

/** The restart-only settings `next` changes from `running` (every check of what a reload may change is here). */
export function restartOnlyChanges(next: Config, running: Config): string[] {
  return RESTART_ONLY.filter(({ of }) => JSON.stringify(of(next)) !== JSON.stringify(of(running))).map(
    ({ name }) => name,
  );
}

/** What a reload changes besides the parts: the running config, the spool, the locks it holds. */
export interface ReloadState {
  running: Config;
  spool: FilesystemStore | undefined;
  readonly locks: DirectoryLock[];
  /** Serves the new certificates too once they are renewed on disk. */
  metricsServer: MetricsServer | undefined;
}

/**
 * Re-reads the config file and applies it (SIGHUP, a changed file, `tierflight reload`), or
 * keeps the running config: classes, limits, reservation settings and users change at once;
 * a restart-only setting, or a file with errors, is refused, logged and counted, and the node
 * keeps serving as it was. Certificates renewed on disk take effect for new connections.
 */
export function reloadNode(
  parts: NodeParts,
  state: ReloadState,
  file: string | undefined,
  overrides: ((config: Config) => Config) | undefined,
  logger: Logger,
): boolean {
  const { manager, reservations, authenticator, metrics, tls } = parts;
  if (tls?.reload()) state.metricsServer?.setTls(tls.pem);
  if (!file) return false;
  try {
    const loaded = loadConfigFile(file).config;
    const next = overrides ? overrides(loaded) : loaded;
    const refused = restartOnlyChanges(next, state.running);
    if (refused.length > 0)
      throw new Error(`changing ${refused.join(', ')} needs a restart; the running config is kept`);
    // A class made weak: its flights can wait in the spool at shutdown from now on.
    const spoolDir = state.spool ? undefined : spoolDirectory(next);
    if (spoolDir) {
      state.locks.push(...lockDirectories([{ dir: spoolDir, what: 'spool' }]));
      state.spool = new FilesystemStore('spool', spoolDir);
      manager.useSpool(state.spool);
    }
    manager.reconfigure(next);
    reservations.reconfigure(next.reservations);
    authenticator.current = parts.authenticatorFor(next);
    state.running = next;
    metrics.configReloaded('applied');
    return true;
  } catch (err) {
    // A bad file never replaces a good config: log why, count it, keep serving.
    metrics.configReloaded(err instanceof ConfigError ? 'invalid' : 'refused');
    logger.error({ config: file, err: (err as Error).message }, 'config reload failed; the running config is kept');
    return false;
  }
}
