import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/**
 * Creates (or reuses) the git-ignored test virtualenv with pyarrow, moto and redis-server: the real
 * Flight client, S3-compatible server and Redis the suite talks to. Reinstalls when
 * test/py/requirements.txt changes.
 */
export const ROOT = path.resolve(import.meta.dirname, '../..');
export const VENV = path.join(ROOT, '.venv');
export const PYTHON = path.join(VENV, 'bin', 'python');

export default function setup(): void {
  const requirements = path.join(ROOT, 'test/py/requirements.txt');
  const want = createHash('sha256').update(readFileSync(requirements)).digest('hex');
  const marker = path.join(VENV, '.tierflight-requirements');
  if (existsSync(PYTHON) && existsSync(marker) && readFileSync(marker, 'utf8') === want) return;
  const python = process.env.TIERFLIGHT_PYTHON ?? 'python3';
  process.stdout.write(`test setup: creating ${VENV} with ${python} (pyarrow, moto, redis-server)\n`);
  if (!existsSync(PYTHON)) execFileSync(python, ['-m', 'venv', VENV], { stdio: 'inherit' });
  execFileSync(PYTHON, ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '-r', requirements], {
    stdio: 'inherit',
  });
  writeFileSync(marker, want);
}
