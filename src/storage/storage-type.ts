import type { StorageTypeName } from '../config/schema.js';

/**
 * A node-wide storage resource shared by every class (DESIGN.md §3). It owns the byte
 * accounting of its capacity; the manager decides what to evict when a reservation
 * does not fit. Invariant: `used` equals the bytes of every version it holds (visible,
 * or retired but still pinned by a reader) plus uploads' reservations, and never
 * exceeds `capacity`.
 */
export interface StorageType {
  readonly name: StorageTypeName;
  readonly capacity: number;
  readonly used: number;
  /** Charges `bytes` if they fit; returns false (charging nothing) otherwise. */
  tryReserve(bytes: number): boolean;
  /** Returns bytes charged earlier. */
  release(bytes: number): void;
}

/** Byte accounting of one storage type. */
export class ByteBudget implements StorageType {
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

  tryReserve(bytes: number): boolean {
    if (bytes < 0) throw new RangeError(`cannot reserve ${bytes} bytes`);
    if (this.usedBytes + bytes > this.capacity) return false;
    this.usedBytes += bytes;
    return true;
  }

  release(bytes: number): void {
    if (bytes < 0 || bytes > this.usedBytes) {
      throw new RangeError(`storage type ${this.name}: releasing ${bytes} of ${this.usedBytes} used bytes`);
    }
    this.usedBytes -= bytes;
  }
}
