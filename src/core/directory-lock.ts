import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';

/**
 * One owner per directory: an exclusive lock held for the life of the process and released
 * by the operating system when the process ends, however it ends. Node has no flock; SQLite
 * (built into Node 24) takes POSIX fcntl locks, so the lock is an SQLite database in the
 * directory held in an exclusive transaction that is never committed. A second process
 * asking for it is refused at once (no waiting), and reads who holds it from the owner file
 * the holder wrote. fcntl locks are per host: they hold against another process on this
 * machine (also in another container sharing the directory), not across a network file
 * system's clients.
 */
export class DirectoryInUseError extends Error {}

export interface DirectoryLock {
  readonly dir: string;
  release(): void;
}

const LOCK_FILE = '.tierflight.lock';
const OWNER_FILE = '.tierflight.owner';

/** A directory this server needs that cannot be created or opened (not writable, a file in the way). */
export class DirectoryUnusableError extends Error {}

/** Locks `dir` (`what` names it in errors: "tier directory", "spool"), creating it if needed. */
export function lockDirectory(dir: string, what = 'directory'): DirectoryLock {
  try {
    mkdirSync(dir, { recursive: true });
  } catch (err) {
    throw new DirectoryUnusableError(
      `cannot create the ${what} ${dir}: ${(err as Error).message}; make it writable by the server, or configure another`,
    );
  }
  const db = new DatabaseSync(path.join(dir, LOCK_FILE), { timeout: 0 });
  try {
    db.exec('PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE;');
  } catch (err) {
    db.close();
    if (!/locked|busy/i.test((err as Error).message)) throw err;
    throw new DirectoryInUseError(
      `directory ${dir} is in use by another Tierflight server (${owner(dir)}); ` +
        'each tier directory and spool belongs to one running server',
    );
  }
  writeFileSync(
    path.join(dir, OWNER_FILE),
    `${JSON.stringify({ pid: process.pid, host: hostname(), since: new Date().toISOString() })}\n`,
  );
  let held = true;
  return {
    dir,
    release: () => {
      if (held) db.close();
      held = false;
    },
  };
}

/** Locks every directory, or none: on a refusal, the ones already taken are released. */
export function lockDirectories(dirs: readonly (string | { dir: string; what: string })[]): DirectoryLock[] {
  const locks: DirectoryLock[] = [];
  const seen = new Set<string>();
  try {
    for (const d of dirs) {
      const { dir, what } = typeof d === 'string' ? { dir: d, what: 'directory' } : d;
      const resolved = path.resolve(dir);
      if (seen.has(resolved)) continue;
      seen.add(resolved);
      locks.push(lockDirectory(resolved, what));
    }
    return locks;
  } catch (err) {
    for (const lock of locks) lock.release();
    throw err;
  }
}

/**
 * Who holds a directory's lock now, from the owner file the holder wrote; undefined when no
 * running server holds it (the lock is tried, and let go at once when it was free).
 */
export function lockHolder(dir: string): { pid: number; host: string } | undefined {
  const file = path.join(dir, LOCK_FILE);
  if (!existsSync(file)) return undefined;
  const db = new DatabaseSync(file, { timeout: 0 });
  try {
    db.exec('PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE;');
    return undefined; // free: nobody runs on it
  } catch (err) {
    if (!/locked|busy/i.test((err as Error).message)) throw err;
    const o = JSON.parse(readFileSync(path.join(dir, OWNER_FILE), 'utf8')) as { pid?: unknown; host?: unknown };
    if (typeof o.pid !== 'number' || typeof o.host !== 'string') return undefined;
    return { pid: o.pid, host: o.host };
  } finally {
    db.close();
  }
}

function owner(dir: string): string {
  try {
    const o = JSON.parse(readFileSync(path.join(dir, OWNER_FILE), 'utf8')) as {
      pid?: number;
      host?: string;
      since?: string;
    };
    return `pid ${o.pid} on ${o.host}, since ${o.since}`;
  } catch {
    return 'holder unknown';
  }
}
