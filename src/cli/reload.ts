import { readdirSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import { ownedDirectories } from '../node/directories.js';
import type { Config } from '../config/schema.js';
import { lockHolder } from '../core/directory-lock.js';

/**
 * `tierflight reload --config FILE`: sends SIGHUP to the server running with that config and
 * to no other. It is found by the directories the config makes it hold (tier folders, the
 * spool): their locks name the process holding them, and only a live lock counts, so a
 * stale owner file or another user's server on the same machine is never signalled. With
 * `serve --workers`, every worker holds its own `worker-i` folders, and each is signalled.
 */
export function reloadServer(config: Config, file: string, signal: (pid: number) => void): number[] {
  const dirs = ownedDirectories(config).map((d) => d.dir);
  if (dirs.length === 0) {
    throw new Error(
      `${file} names no folder its server holds (no tier directory, no spool), so it cannot be found from the ` +
        "config: send SIGHUP to the pid in the server's ready line",
    );
  }
  const holders = new Map<number, string>();
  for (const dir of dirs) {
    for (const candidate of [dir, ...workerFolders(dir)]) {
      const holder = lockHolder(candidate);
      if (!holder) continue;
      if (holder.host !== hostname()) {
        throw new Error(`${candidate} is held by a server on ${holder.host}: run tierflight reload there`);
      }
      holders.set(holder.pid, candidate);
    }
  }
  if (holders.size === 0) {
    throw new Error(`no running server holds ${dirs.join(', ')}: is the server started with ${file}?`);
  }
  for (const pid of holders.keys()) signal(pid);
  return [...holders.keys()];
}

/** `serve --workers`: tier folders get a `worker-i` folder inside, the spool a `-worker-i` sibling. */
function workerFolders(dir: string): string[] {
  const inside = list(dir)
    .filter((n) => /^worker-\d+$/.test(n))
    .map((n) => path.join(dir, n));
  const parent = path.dirname(dir);
  const prefix = `${path.basename(dir)}-worker-`;
  const beside = list(parent)
    .filter((n) => n.startsWith(prefix) && /^\d+$/.test(n.slice(prefix.length)))
    .map((n) => path.join(parent, n));
  return [...inside, ...beside];
}

function list(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
