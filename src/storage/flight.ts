import type { RoutedClass } from '../routing/router.js';
import type { StorageTypeName } from '../config/schema.js';

/** One stored Arrow IPC message after the schema: a dictionary batch or a record batch. */
export interface StoredMessage {
  kind: 'dictionary' | 'batch';
  /** The bare flatbuffer `Message`. */
  header: Buffer;
  /** The message body (8-byte aligned by the sender). */
  body: Buffer;
  appMetadata: Buffer;
  /** The FlightData bytes it arrived in, replayed as they are when set. */
  wire?: Buffer;
  rows: number;
}

/** Bytes a message holds in memory: its received buffer when kept whole, else its parts. */
export function heldBytes(m: { header: Buffer; body: Buffer; appMetadata: Buffer; wire?: Buffer }): number {
  return m.wire ? m.wire.length : m.header.length + m.body.length + m.appMetadata.length;
}

/** Arrow IPC bytes of a message (header + body), as reported in `total_bytes`. */
export function dataBytes(m: { header: Buffer; body: Buffer }): number {
  return m.header.length + m.body.length;
}

/** A half-open range of record-batch indices. */
export interface BatchRange {
  from: number;
  to: number;
}

/**
 * Why a flight version stopped being visible or left a tier. Every placement decision
 * carries one, for logs and metrics.
 */
export type RemovalReason = 'replace' | 'delete' | 'evict' | 'expire';

/**
 * One immutable version of a flight. A put to an existing path publishes a new
 * version; readers already streaming the old one hold a pin, so its bytes are freed
 * only when the last of them finishes.
 */
export class FlightVersion {
  pins = 0;
  /** Set once the version is no longer visible; its bytes go when `pins` reaches 0. */
  retired: RemovalReason | undefined;
  lastAccess: number;

  constructor(
    readonly id: number,
    readonly path: string,
    readonly cls: RoutedClass,
    readonly storage: StorageTypeName,
    readonly tierIndex: number,
    readonly schemaHeader: Buffer,
    readonly messages: readonly StoredMessage[],
    /** Message index of each record batch, in order. */
    readonly batchIndex: readonly number[],
    readonly totalRecords: number,
    readonly totalBytes: number,
    /** Bytes charged to the storage type. */
    readonly heldBytes: number,
    readonly createdAt: number,
    readonly expiresAt: number | undefined,
  ) {
    this.lastAccess = createdAt;
  }

  isExpired(now: number): boolean {
    return this.expiresAt !== undefined && now >= this.expiresAt;
  }

  /**
   * The messages to replay for a batch range: every dictionary message that precedes
   * the first batch of the range (a reader needs the dictionaries' state), then the
   * range's batches with the dictionary deltas between them.
   */
  *messagesFor(range?: BatchRange): Generator<StoredMessage> {
    const n = this.batchIndex.length;
    const from = range ? Math.min(range.from, n) : 0;
    const to = range ? Math.min(range.to, n) : n;
    if (from >= to && range) {
      // An empty range still replays the dictionaries so the stream is self-describing.
      yield* this.messages.filter((m) => m.kind === 'dictionary');
      return;
    }
    const start = from === 0 ? 0 : (this.batchIndex[from] as number);
    const end = to === n ? this.messages.length : (this.batchIndex[to] as number);
    if (from > 0) {
      for (let i = 0; i < start; i++) {
        const m = this.messages[i] as StoredMessage;
        if (m.kind === 'dictionary') yield m;
      }
    }
    for (let i = start; i < end; i++) yield this.messages[i] as StoredMessage;
  }
}
