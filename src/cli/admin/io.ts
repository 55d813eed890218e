import type { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { createInterface } from 'node:readline/promises';
import type { FlightInfo } from '../../client/flight-client.js';
import { FILE_MAGIC } from '../../ipc/file-layout.js';
import { encapsulatedMessages, type IpcMessage } from '../../ipc/ipc-stream.js';
import { progress } from './progress.js';

/** Output, input and file-format helpers of `tierflight admin`. */

export interface Summary {
  path: string;
  rows: number;
  bytes: number;
  createdAt?: string;
  updatedAt?: string;
  owner?: string | null;
  pinned?: boolean;
  /** A partitioned dataset's partition count. */
  partitions?: number;
}

export function summary(info: FlightInfo): Summary {
  let meta: { createdAt?: string; updatedAt?: string; owner?: string | null; pinned?: boolean; partitions?: number } =
    {};
  try {
    meta = info.appMetadata.length > 0 ? (JSON.parse(info.appMetadata.toString('utf8')) as typeof meta) : {};
  } catch {
    meta = {};
  }
  return { path: info.path.join('/'), rows: info.totalRecords, bytes: info.totalBytes, ...meta };
}

/** A job's progress: a bar on a terminal, else one line per result (JSON lines with --json). */
export function jobProgress(kind: string, opts: { json?: boolean }): (p: Record<string, unknown>) => void {
  let bar: ReturnType<typeof progress> | undefined;
  let shown = 0;
  return (p) => {
    if (opts.json || !process.stderr.isTTY) {
      const line = opts.json
        ? JSON.stringify(p)
        : `${kind} ${String(p.id)}: ${String(p.processed)}/${String(p.total)} done, ${String(p.failed)} failed, ` +
          `checkpoint ${String(p.checkpoint)}${p.state === 'paused' ? ` (${String(p.message)})` : ''}${p.done ? ', finished' : ''}`;
      process.stdout.write(`${line}\n`);
      return;
    }
    bar ??= progress(`${kind} ${String(p.id)}`, Number(p.total) || 1, opts, 'flights');
    bar.add(Number(p.processed) - shown);
    shown = Number(p.processed);
    if (p.done) {
      bar.done();
      process.stdout.write(
        `${kind}: ${String(p.processed)} flights, ${String(p.failed)} failed, checkpoint ${String(p.checkpoint)}\n`,
      );
    }
  };
}

export function print(value: unknown): void {
  process.stdout.write(typeof value === 'string' ? `${value}\n` : `${JSON.stringify(value, null, 2)}\n`);
}

export async function write(out: Writable, bytes: Buffer): Promise<void> {
  if (out === process.stdout) {
    await new Promise<void>((resolve, reject) => process.stdout.write(bytes, (err) => (err ? reject(err) : resolve())));
    return;
  }
  out.end(bytes);
  await finished(out);
}

export async function readAll(input: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of input) chunks.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(chunks);
}

export function isIpcFile(bytes: Buffer): boolean {
  return bytes.subarray(0, 6).equals(FILE_MAGIC.subarray(0, 6));
}

/** The messages of an Arrow IPC file, re-framed as a stream by apache-arrow (loaded only for files). */
export async function fileMessages(bytes: Buffer): Promise<IpcMessage[]> {
  const arrow = await import('apache-arrow');
  return encapsulatedMessages(arrow.tableToIPC(arrow.tableFromIPC(bytes), 'stream'));
}

/** An Arrow IPC stream rewritten in the file layout (with its footer) by apache-arrow. */
export async function toIpcFile(stream: Buffer): Promise<Buffer> {
  const arrow = await import('apache-arrow');
  return Buffer.from(arrow.tableToIPC(arrow.tableFromIPC(stream), 'file'));
}

export async function confirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(question)).trim());
  } finally {
    rl.close();
  }
}
