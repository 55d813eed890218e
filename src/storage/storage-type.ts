import type { StorageTypeName } from '../config/schema.js';
import type { BufferPool } from '../core/buffer-pool.js';

export type { Frame } from '../ipc/frame.js';
import type { Frame } from '../ipc/frame.js';
import type { IndexEntry } from '../ipc/stream-reader.js';

/**
 * A file whose first `bytes` bytes are exactly a flight's Arrow IPC stream: the schema, the
 * messages where `index` says, then the end-of-stream marker (the `disk` layout) — which is
 * also how a durable flight object starts.
 */
export interface StreamFile {
  readonly path: string;
  readonly index: readonly IndexEntry[];
  /**
   * The stream's length, end-of-stream marker included. These bytes never change while the
   * file exists; a durable store that shares the file's storage (a hard link) may write
   * past them.
   */
  readonly bytes: number;
}

/** Where a copy lives: a storage type, or the durable store itself (served from there). */
export type CopyLocation = StorageTypeName | 'durable';

/**
 * Where a flight's bytes live in one storage type. Immutable once written; the manager
 * pins it while readers stream from it and destroys it when the last one is done.
 */
export interface Placement {
  readonly storage: StorageTypeName;
  /** Bytes charged to the storage type for this placement. */
  readonly bytes: number;
  /**
   * The messages at the given indices (in the order given), ready to send. Buffers a
   * placement allocates for them come from `pool` when given; the reader gives each back
   * (`pool.release(frame.prefixed)`) once sent. Stored buffers are never from the pool.
   */
  read(indices: readonly number[], pool?: BufferPool): AsyncIterable<Frame>;
  /** The placement's file, when it holds the flight as an IPC stream (see StreamFile). */
  readonly streamFile?: StreamFile | undefined;
  /**
   * False when the bytes are gone from under the placement (a tier file deleted by
   * someone else): checked before a read, so the flight can fall back to its durable copy.
   */
  intact?(): Promise<boolean>;
  /** Frees what the placement holds (drops buffers, deletes the file). Called once. */
  destroy(): Promise<void>;
}

/**
 * Writes one flight into a storage type. The caller charges `sizeOf`/`trailerSize`
 * bytes to the storage type before each write, so accounting never trails the bytes held.
 */
export interface PlacementWriter {
  readonly storage: StorageTypeName;
  /** Bytes the schema message occupies. */
  schemaSize(header: Buffer): number;
  /** Bytes a message occupies. */
  sizeOf(frame: Frame): number;
  /** Bytes `finish` adds after the last message (footer, end-of-stream marker). */
  trailerSize(): number;
  writeSchema(header: Buffer): Promise<void>;
  append(frame: Frame): Promise<void>;
  /** Every message written so far, in order: used to spill a growing upload to another tier. */
  written(): AsyncIterable<Frame>;
  finish(): Promise<Placement>;
  /** Discards everything written. Idempotent. */
  abort(): Promise<void>;
}

/**
 * A node-wide storage type (DESIGN.md §3): byte accounting of its capacity plus a way to
 * write placements. The manager decides what to evict when a reservation does not fit.
 * Invariant: `used` equals the bytes of every placement it holds plus writers' charges,
 * and never exceeds `capacity`.
 */
export interface StorageType {
  readonly name: StorageTypeName;
  readonly capacity: number;
  readonly used: number;
  /** Charges `bytes` if they fit; returns false (charging nothing) otherwise. */
  tryCharge(bytes: number): boolean;
  /** Returns bytes charged earlier. */
  uncharge(bytes: number): void;
  /** Prepares the type for use (disk tiers start empty). */
  init(): Promise<void>;
  createWriter(): PlacementWriter;
}

/** Byte accounting of one storage type. */
export class ByteBudget {
  private usedBytes = 0;

  constructor(
    readonly name: StorageTypeName,
    readonly capacity: number,
  ) {
    if (!Number.isSafeInteger(capacity) || capacity < 0) {
      throw new RangeError(`storage type ${name}: capacity must be a non-negative integer, got ${capacity}`);
    }
  }

  get used(): number {
    return this.usedBytes;
  }

  tryCharge(bytes: number): boolean {
    if (bytes < 0) throw new RangeError(`cannot charge ${bytes} bytes`);
    if (this.usedBytes + bytes > this.capacity) return false;
    this.usedBytes += bytes;
    return true;
  }

  uncharge(bytes: number): void {
    if (bytes < 0 || bytes > this.usedBytes) {
      throw new RangeError(`storage type ${this.name}: releasing ${bytes} of ${this.usedBytes} used bytes`);
    }
    this.usedBytes -= bytes;
  }
}
