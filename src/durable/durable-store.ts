import type { Readable } from 'node:stream';
import { hasControlCharacter } from '../core/path.js';

/** A local file whose first `bytes` bytes become the start of an object (`putFile`). */
export interface FileSource {
  readonly path: string;
  readonly bytes: number;
}

/**
 * The durable store contract (DESIGN.md §2). Everything above it — write-through,
 * restore, restart recovery, TTL in the store — talks to this interface only; `s3` and
 * `filesystem` implement it, and `test/durable/conformance.ts` is the suite any new
 * implementation must pass.
 *
 * Keys are `/`-separated strings built from a class's `durablePrefix` and a normalised
 * flight path; an implementation must never read or write outside its root for any key.
 *
 * Errors: every failure is a `DurableStoreError` whose `kind` tells the caller what to do:
 * - `not_found` — the object does not exist (never retried);
 * - `transient` — the store is unreachable, slow, throttling or failing (retry with backoff);
 * - `permanent` — retrying will not help (bad credentials, missing bucket, invalid key).
 */
export interface DurableStore {
  readonly id: string;
  /**
   * Writes an object from a stream of chunks. The object becomes visible only when the
   * promise resolves; if the body throws, the signal aborts or the store fails, the
   * promise rejects and nothing is left behind (no partial object, no orphaned multipart
   * upload). An existing object under the key is replaced atomically.
   */
  put(key: string, body: AsyncIterable<Buffer>, options?: PutOptions): Promise<ObjectInfo>;
  /**
   * Writes an object whose bytes are the first `source.bytes` bytes of the local file
   * `source.path` followed by `tail`, with `put`'s guarantees. Offered by stores that take a
   * file without reading it through the process (the filesystem store: a hard link, or a
   * kernel-side copy); a `disk` tier's file is a flight object's stream part as it is, so a
   * weak upload of a flight there goes this way. The caller guarantees those bytes never
   * change while the file exists; the store may share the file's storage and write past them.
   */
  putFile?(key: string, source: FileSource, tail: readonly Buffer[], options?: PutOptions): Promise<ObjectInfo>;
  /**
   * Streams an object, or the byte range [start, end) of it. The caller must consume or
   * destroy the returned stream.
   */
  get(key: string, range?: ByteRange, signal?: AbortSignal): Promise<Readable>;
  /** The object's size, or undefined when it does not exist. */
  head(key: string): Promise<ObjectInfo | undefined>;
  /** Removes an object; removing an absent one is not an error. */
  delete(key: string): Promise<void>;
  /** Every object whose key starts with `prefix` (a plain string prefix), in key order. */
  list(prefix: string): AsyncIterable<ObjectInfo>;
  /** Releases connections. */
  close(): void;
}

export interface PutOptions {
  signal?: AbortSignal;
}

export interface ByteRange {
  start: number;
  /** Exclusive; omitted means to the end of the object. */
  end?: number;
}

export interface ObjectInfo {
  key: string;
  size: number;
  /**
   * Changes whenever the object is replaced (S3's ETag; a filesystem store's modification
   * time and size): what a node compares to know, from a listing, whether an object is
   * still the version it holds. Absent when the store cannot say.
   */
  version?: string;
  /** When the object was last written (ms since the epoch), by the store's clock. */
  modifiedAt?: number;
}

export type DurableErrorKind = 'not_found' | 'transient' | 'permanent';

export class DurableStoreError extends Error {
  constructor(
    readonly kind: DurableErrorKind,
    readonly store: string,
    readonly key: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`durable store "${store}", key "${key}": ${message}`, options);
    this.name = 'DurableStoreError';
  }
}

/** Refuses keys that could name something outside a store's root. */
export function checkKey(store: string, key: string): void {
  const bad =
    key.length === 0 ||
    key.startsWith('/') ||
    key.split('/').some((s) => s === '' || s === '.' || s === '..') ||
    hasControlCharacter(key);
  if (bad) throw new DurableStoreError('permanent', store, key, 'invalid object key');
}

/** How a store operation failed, for metrics: any error that is not the store's own counts as transient. */
export function kindOf(err: unknown): 'not_found' | 'transient' | 'permanent' {
  return err instanceof DurableStoreError ? err.kind : 'transient';
}
