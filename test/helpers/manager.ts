import { flightPath } from '../../src/core/path.js';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseConfigText } from '../../src/config/load.js';
import type { PlacementObserver } from '../../src/storage/events.js';
import type { FlightLease } from '../../src/storage/manager.js';
import { StorageManager } from '../../src/storage/manager.js';
import type { Frame } from '../../src/storage/storage-type.js';
import type { Clock } from '../../src/core/clock.js';
import { sampleMessages } from './raw-client.js';

/** A real Schema message, so the disk_mapped footer can point at its table. */
export const SCHEMA = sampleMessages().schema.header;

/** A batch frame of `bytes` recognisable bytes (header and body vary with `seed`). */
export function frame(seed: number, bytes: number, kind: Frame['kind'] = 'batch'): Frame {
  const headerLength = 8 + (seed % 5) * 8;
  const header = Buffer.alloc(headerLength, seed & 0xff);
  header.writeUInt32LE(seed >>> 0, 0);
  const body = Buffer.alloc(Math.max(0, bytes - headerLength));
  for (let i = 0; i < body.length; i++) body[i] = (seed * 31 + i * 7) & 0xff;
  return { kind, header, body, appMetadata: Buffer.from(`m${seed}`), rows: 1 };
}

export async function putFlight(m: StorageManager, path: string, frames: Frame[], sizeHint?: number): Promise<void> {
  const s = await m.beginPut(flightPath([path]), sizeHint === undefined ? {} : { sizeHint });
  try {
    await s.setSchema(SCHEMA);
    for (const f of frames) await s.append(f);
    await s.commit();
  } catch (err) {
    await s.abort();
    throw err;
  }
}

/** Reads every message of a leased copy: header, body and app_metadata of each. */
export async function readLease(lease: FlightLease, indices = lease.version.allMessages()): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for await (const f of lease.read(indices)) out.push(Buffer.concat([f.header, f.body, f.appMetadata]));
  return out;
}

export const expected = (frames: Frame[]): Buffer[] =>
  frames.map((f) => Buffer.concat([f.header, f.body, f.appMetadata]));

export interface TestManager {
  manager: StorageManager;
  dir: string;
  cleanup(): Promise<void>;
}

/** A manager on a config whose `$DIR` is replaced by a fresh temporary directory. */
export async function createManager(yaml: string, clock: Clock, observer?: PlacementObserver): Promise<TestManager> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tierflight-manager-'));
  const config = parseConfigText(yaml.replaceAll('$DIR', dir), 'test.yaml');
  const manager = new StorageManager({ config, clock });
  if (observer) manager.events.subscribe(observer);
  await manager.init();
  return { manager, dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}
