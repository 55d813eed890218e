import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * Servers whose config names no spool and no tier directory keep their default spool under
 * `$XDG_STATE_HOME/tierflight`: during the suite that is a temporary folder of its own (the
 * test workers and the servers they spawn inherit it), removed at the end, never the
 * user's home.
 */
export default function setup(): () => void {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tierflight-state-'));
  process.env.XDG_STATE_HOME = dir;
  return () => rmSync(dir, { recursive: true, force: true });
}
