import type { TierConfig } from '../config/schema.js';
import { formatSize } from '../config/units.js';
import type { Charge, Ledger } from './ledger.js';
import type { Placement, PlacementWriter, StorageType } from './storage-type.js';

/** Charges bytes to a storage type, evicting to make room; throws RESOURCE_EXHAUSTED. */
export type ChargeBytes = (charge: Charge, bytes: number) => Promise<void>;

/**
 * One flight being written into one tier under a charge: what a put session writes and
 * what the tier mover copies (spill, move, promote, restore) both go through this. Bytes
 * are charged before each write; `finish` keeps exactly what the placement holds, `abort`
 * returns everything, so a copy that fails leaves nothing charged.
 */
export class TierCopy {
  readonly writer: PlacementWriter;
  readonly charge: Charge;
  /** Bytes the copy has made room for so far. */
  private written = 0;

  constructor(
    private readonly ledger: Ledger,
    readonly tier: TierConfig,
    private readonly chargeBytes: ChargeBytes,
  ) {
    const storage = ledger.storageType(tier);
    this.writer = storage.createWriter();
    this.charge = ledger.openCharge(storage);
  }

  get storage(): StorageType {
    return this.charge.storage;
  }

  /**
   * Why `bytes` more can never go into this tier (maxFlightSize, capacity), or undefined.
   * `beyondMax`: how far past maxFlightSize a put may run before it spills (see spillLeeway).
   */
  tooBig(bytes: number, beyondMax = 0): string | undefined {
    const after = this.written + bytes;
    const max = this.tier.maxFlightSize;
    if (max !== undefined && after > max + beyondMax) {
      return `the flight (${formatSize(after)}) exceeds maxFlightSize ${formatSize(max)}`;
    }
    if (after > this.storage.capacity) {
      return `the flight (${formatSize(after)}) exceeds the ${this.storage.name} capacity ${formatSize(this.storage.capacity)}`;
    }
    return undefined;
  }

  /** Charges what `bytes` more need beyond what is charged already (a size hint may cover them). */
  async room(bytes: number): Promise<void> {
    const after = this.written + bytes;
    const missing = after - this.charge.bytes;
    if (missing > 0) await this.chargeBytes(this.charge, missing);
    this.written = after;
  }

  /** Finishes the copy: the placement keeps exactly its bytes, the surplus of the charge goes back. */
  async finish(): Promise<Placement> {
    const placement = await this.writer.finish();
    this.ledger.unchargeBytes(this.charge, this.charge.bytes - placement.bytes);
    this.ledger.closeCharge(this.charge);
    return placement;
  }

  /** Frees a finished copy that is not wanted after all (its flight was removed meanwhile). */
  discard(placement: Placement): Promise<void> {
    return this.ledger.discard(placement);
  }

  /** Charges `bytes` up front, before anything is written (a put's size hint). */
  prepay(bytes: number): Promise<void> {
    return this.chargeBytes(this.charge, bytes);
  }

  /** Drops what was written and returns every charged byte (idempotent). */
  async abort(): Promise<void> {
    await this.writer.abort().catch(() => undefined);
    this.ledger.abandonCharge(this.charge);
  }
}
