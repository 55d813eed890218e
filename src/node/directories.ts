import { spoolDirectory } from '../config/load.js';
import type { Config } from '../config/schema.js';
import type { DurableStore } from '../durable/durable-store.js';
import { FilesystemStore } from '../durable/filesystem-store.js';
import type { Logger } from '../core/log.js';

/** How old a temporary file in a shared filesystem store must be to count as abandoned. */
const STALE_TEMPORARY_MS = 60 * 60 * 1000;

/** The directories this server must own alone: every tier directory, and the spool. */
export function ownedDirectories(config: Config): { dir: string; what: string }[] {
  const types = config.storageTypes;
  const spool = spoolDirectory(config);
  return [
    ...(types.disk_mapped ? [{ dir: types.disk_mapped.path, what: 'disk_mapped tier directory' }] : []),
    ...(types.disk ? [{ dir: types.disk.path, what: 'disk tier directory' }] : []),
    ...(spool !== undefined
      ? [{ dir: spool, what: config.server.spool !== undefined ? 'spool (server.spool)' : 'default spool directory' }]
      : []),
  ];
}

/**
 * Removes what puts killed mid-write left: every temporary file in the spool (this server
 * owns it), and those older than an hour in filesystem stores (which servers may share).
 */
export function removeStaleTemporaries(
  stores: ReadonlyMap<string, DurableStore>,
  spool: FilesystemStore | undefined,
  logger: Logger,
): void {
  const jobs: [FilesystemStore, number][] = [...stores.values()]
    .filter((s): s is FilesystemStore => s instanceof FilesystemStore)
    .map((s) => [s, STALE_TEMPORARY_MS]);
  if (spool) jobs.push([spool, 0]);
  for (const [store, age] of jobs) {
    store.removeStaleTemporaries(age).then(
      (removed) =>
        removed > 0 && logger.info({ store: store.id, removed }, 'removed temporary files of unfinished writes'),
      (err: unknown) =>
        logger.warn({ store: store.id, err: (err as Error).message }, 'could not clean temporary files'),
    );
  }
}
