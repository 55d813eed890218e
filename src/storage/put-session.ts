import { InvalidArgumentError, ResourceExhaustedError, TierflightError } from '../errors.js';
import type { TierConfig } from '../config/schema.js';
import { formatSize } from '../config/units.js';
import type { RoutedClass } from '../routing/router.js';
import { dataBytes, FlightVersion, heldBytes, type StoredMessage } from './flight.js';
import type { StorageType } from './storage-type.js';

/** What a put session needs from the manager that owns it. */
export interface PutHost {
  /** Charges bytes to a storage type, evicting to make room; throws RESOURCE_EXHAUSTED. */
  reserve(storage: StorageType, bytes: number, forPath: string): void;
  release(storage: StorageType, bytes: number): void;
  /** Makes a finished version visible, atomically replacing the path's current one. */
  publish(version: FlightVersion): void;
  nextVersionId(): number;
  now(): number;
  sessionEnded(session: PutSession): void;
}

/**
 * One `DoPut` in progress. Bytes are charged to the tier as messages arrive (or up front
 * from the size hint); nothing is visible until `commit`, and `abort` returns every
 * charged byte, so a failed or cancelled put leaves no trace.
 */
export class PutSession {
  private schemaHeader: Buffer | undefined;
  private readonly messages: StoredMessage[] = [];
  private readonly batchIndex: number[] = [];
  private records = 0;
  private data = 0;
  /** Bytes the stored messages hold. */
  private held = 0;
  /** Bytes charged to the storage type (≥ held while open). */
  private charged = 0;
  private state: 'open' | 'committed' | 'aborted' = 'open';

  constructor(
    private readonly host: PutHost,
    readonly path: string,
    readonly cls: RoutedClass,
    readonly tierIndex: number,
    private readonly tier: TierConfig,
    readonly storage: StorageType,
    sizeHint: number | undefined,
  ) {
    if (sizeHint !== undefined) {
      this.checkFits(sizeHint, 'the declared flight size');
      this.charge(sizeHint);
    }
  }

  get reservedBytes(): number {
    return this.charged;
  }

  setSchema(header: Buffer): void {
    this.assertOpen();
    if (this.schemaHeader) throw new InvalidArgumentError(`flight "${this.path}": schema sent twice`);
    this.grow(header.length);
    this.schemaHeader = header;
  }

  append(message: StoredMessage): void {
    this.assertOpen();
    if (!this.schemaHeader) throw new InvalidArgumentError(`flight "${this.path}": a batch arrived before the schema`);
    this.grow(heldBytes(message));
    if (message.kind === 'batch') {
      this.batchIndex.push(this.messages.length);
      this.records += message.rows;
    }
    this.messages.push(message);
    this.data += dataBytes(message);
  }

  commit(): FlightVersion {
    this.assertOpen();
    if (!this.schemaHeader) throw new InvalidArgumentError(`flight "${this.path}": the put ended without a schema`);
    // Give back what the size hint over-reserved; the version keeps exactly what it holds.
    if (this.charged > this.held) {
      this.host.release(this.storage, this.charged - this.held);
      this.charged = this.held;
    }
    const now = this.host.now();
    const ttl = this.cls.config.ttl;
    const version = new FlightVersion(
      this.host.nextVersionId(),
      this.path,
      this.cls,
      this.storage.name,
      this.tierIndex,
      this.schemaHeader,
      this.messages,
      this.batchIndex,
      this.records,
      this.data,
      this.held,
      now,
      ttl === undefined ? undefined : now + ttl,
    );
    this.state = 'committed';
    this.host.publish(version);
    this.host.sessionEnded(this);
    return version;
  }

  /** Idempotent: returns every byte this put charged. */
  abort(): void {
    if (this.state !== 'open') return;
    this.state = 'aborted';
    if (this.charged > 0) this.host.release(this.storage, this.charged);
    this.charged = 0;
    this.messages.length = 0;
    this.host.sessionEnded(this);
  }

  private grow(bytes: number): void {
    this.held += bytes;
    this.checkFits(this.held, 'the flight');
    if (this.held > this.charged) this.charge(this.held - this.charged);
  }

  private charge(bytes: number): void {
    this.host.reserve(this.storage, bytes, this.path);
    this.charged += bytes;
  }

  private checkFits(bytes: number, what: string): void {
    const max = this.tier.maxFlightSize;
    if (max !== undefined && bytes > max) {
      throw new ResourceExhaustedError(
        `flight "${this.path}": ${what} (${formatSize(bytes)}) exceeds maxFlightSize ${formatSize(max)} of tier ${this.tierIndex} ` +
          `(${this.storage.name}) of class "${this.cls.config.name}", and uploadSpill is "${this.tier.uploadSpill}"`,
      );
    }
    if (bytes > this.storage.capacity) {
      throw new ResourceExhaustedError(
        `flight "${this.path}": ${what} (${formatSize(bytes)}) exceeds the ${this.storage.name} capacity ` +
          `${formatSize(this.storage.capacity)} (class "${this.cls.config.name}")`,
      );
    }
  }

  private assertOpen(): void {
    if (this.state !== 'open')
      throw new TierflightError('CANCELLED', `flight "${this.path}": the put has already ended`);
  }
}
