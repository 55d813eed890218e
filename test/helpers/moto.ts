import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { CreateBucketCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { VENV } from '../setup/python-env.js';
import { freePort } from './server.js';

/**
 * A real S3-compatible server for the tests: moto_server from the test virtualenv on a
 * free loopback port. `pause`/`resume` freeze it (SIGSTOP/SIGCONT) to simulate a store that
 * hangs; `stop` kills it; `restart` brings it back on the same port (moto keeps nothing
 * across restarts, so tests that restart it re-create their bucket).
 */
export interface Moto {
  readonly endpoint: string;
  readonly port: number;
  /** An SDK client for inspecting the bucket from tests. */
  readonly client: S3Client;
  createBucket(name: string): Promise<void>;
  /** The keys under `prefix`, sorted. */
  keys(bucket: string, prefix?: string): Promise<string[]>;
  pause(): void;
  resume(): void;
  stop(): Promise<void>;
  restart(): Promise<void>;
}

// moto needs credentials to sign with; these fake ones never leave loopback.
export function useFakeAwsCredentials(): void {
  process.env.AWS_ACCESS_KEY_ID = 'tierflight-test';
  process.env.AWS_SECRET_ACCESS_KEY = 'tierflight-test';
  process.env.AWS_REGION = 'us-east-1';
  delete process.env.AWS_PROFILE;
}

export async function startMoto(): Promise<Moto> {
  useFakeAwsCredentials();
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  let child = await launch(port, endpoint);
  const client = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true });
  return {
    endpoint,
    port,
    client,
    createBucket: async (name) => {
      await client.send(new CreateBucketCommand({ Bucket: name }));
    },
    keys: async (bucket, prefix = '') => {
      const out = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
      return (out.Contents ?? []).map((o) => o.Key as string).sort();
    },
    pause: () => child.kill('SIGSTOP'),
    resume: () => child.kill('SIGCONT'),
    stop: () => kill(child),
    restart: async () => {
      await kill(child);
      child = await launch(port, endpoint);
    },
  };
}

async function launch(port: number, endpoint: string): Promise<ChildProcess> {
  const child = spawn(path.join(VENV, 'bin', 'moto_server'), ['-H', '127.0.0.1', '-p', String(port)], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`moto_server exited ${child.exitCode}:\n${stderr}`);
    try {
      const res = await fetch(`${endpoint}/`, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      return child;
    } catch {
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`moto_server did not answer on ${endpoint} within 30 s:\n${stderr}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGCONT');
    child.kill('SIGKILL');
  });
}
