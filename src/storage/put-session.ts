import { received } from '../core/garbage.js';
import {
  CancelledError,
  InvalidArgumentError,
  ResourceExhaustedError,
  RETRY_NEVER,
  type RetryHint,
} from '../errors.js';
import type { FlightPath } from '../core/path.js';
import type { StorageTypeName, TierConfig } from '../config/schema.js';
import type { Logger } from '../core/log.js';
import type { PlacementEvent } from './events.js';
import { formatSize } from '../config/units.js';
import type { RoutedClass } from '../routing/router.js';
import { FlightVersion, newVersionTag } from './flight.js';
import type { Frame, Placement, PlacementWriter, StorageType } from './storage-type.js';
import { bodyLength } from '../ipc/frame.js';
import type { StrongSink } from '../durability/strong-sink.js';
import type { TierCopy } from './tier-copy.js';
import { spillLeeway } from './spill-leeway.js';
import { internSchema } from './schema-intern.js';
import type { DurableCopy, VersionIdentity } from './flight.js';

/** What a put session needs from the manager that owns it. */
export interface PutHost {
  readonly log: Logger;
  emit(event: PlacementEvent): void;
  /** Admits more flight bytes under the limit policies that govern the put; throws RESOURCE_EXHAUSTED. */
  admit(session: PutSession, bytes: number): void;
  /** Starts writing the flight at `path` into a tier, charging (and evicting for) its bytes. */
  copyInto(tier: TierConfig, path: string): TierCopy;
  storageType(tier: TierConfig): StorageType;
  /** Makes a finished version visible, atomically replacing the path's current one. */
  publish(version: FlightVersion, placement: Placement | undefined, tierIndex: number, durable?: DurableCopy): void;
  /** Tells who waits for the path that a version landed (awaited: part of the put). */
  landed(version: FlightVersion, copied: boolean): Promise<void>;
  /** The store upload of a strong put (or, `evenIfWeak`, a weak one), undefined for other classes. */
  strongSink(cls: RoutedClass, path: string, evenIfWeak?: boolean): StrongSink | undefined;
  now(): number;
  /** The visible, unexpired version of a path, if any (its first creation time carries over). */
  current(path: string): FlightVersion | undefined;
  sessionEnded(session: PutSession): void;
}

/**
 * One `DoPut` in progress. Bytes are charged to the tier before each write (or up front
 * from the size hint); nothing is visible until `commit`. An upload that outgrows its
 * tier spills: what was written is copied to the next tier and the put continues there,
 * unseen by the client; one that ends within the tier's spill leeway (`spillLeeway`) is
 * published in the tier and moved down right after. `abort` returns every charged byte,
 * so a failed or cancelled put leaves no trace.
 */
export class PutSession {
  private schemaHeader: Buffer | undefined;
  private readonly kinds: Frame['kind'][] = [];
  private readonly sizes: number[] = [];
  private records = 0;
  private data = 0;
  private tierIndex: number;
  /** Who writes the flight (`x-tierflight-owner`), kept with the version. */
  owner: string | undefined;
  /** A copy of a version another node holds (replica, handover): its tag and times are kept. */
  identity: VersionIdentity | undefined;
  /** The copy being written into the current tier. */
  private out: TierCopy;
  private state: 'open' | 'committed' | 'aborted' = 'open';
  /** The operation in progress; abort waits for it before returning the charges. */
  private busy: Promise<unknown> = Promise.resolve();
  /** Strong durability: the object streaming to the store alongside the tier copy. */
  private sink: StrongSink | undefined;
  /** The flight fits no tier: it goes to the durable store only (durable classes). */
  private storeOnly = false;

  private constructor(
    private readonly host: PutHost,
    readonly path: FlightPath,
    readonly cls: RoutedClass,
    tierIndex: number,
  ) {
    this.tierIndex = tierIndex;
    this.out = host.copyInto(this.tier, path);
    this.sink = host.strongSink(cls, path);
  }

  /**
   * Starts a put in the class's first tier, or with a size hint in the first tier whose
   * maxFlightSize and capacity admit it (reserving it there up front).
   */
  static async begin(host: PutHost, path: FlightPath, cls: RoutedClass, sizeHint?: number): Promise<PutSession> {
    const tiers = cls.config.tiers;
    if (sizeHint === undefined) return new PutSession(host, path, cls, 0);
    let lastError: unknown;
    for (let i = 0; i < tiers.length; i++) {
      const tier = tiers[i] as TierConfig;
      if (tier.maxFlightSize !== undefined && sizeHint > tier.maxFlightSize) continue;
      if (sizeHint > host.storageType(tier).capacity) continue;
      const session = new PutSession(host, path, cls, i);
      try {
        await session.out.prepay(sizeHint);
        return session;
      } catch (err) {
        await session.abort();
        lastError = err;
        if (tier.uploadSpill !== 'spill') throw err;
      }
    }
    if (cls.config.durability !== 'none') {
      // Larger than every tier: straight to the durable store, served from there.
      const session = new PutSession(host, path, cls, 0);
      await session.toStoreOnly(`the declared size ${formatSize(sizeHint)} fits no tier`);
      return session;
    }
    if (lastError) throw lastError;
    throw new ResourceExhaustedError(
      `flight "${path}": the declared size ${formatSize(sizeHint)} fits no tier of class "${cls.config.name}"`,
      RETRY_NEVER,
    );
  }

  get tier(): TierConfig {
    return this.cls.config.tiers[this.tierIndex] as TierConfig;
  }

  get storage(): StorageType {
    return this.out.storage;
  }

  setSchema(header: Buffer): Promise<void> {
    return this.run(async () => {
      if (this.schemaHeader) throw new InvalidArgumentError(`flight "${this.path}": schema sent twice`);
      this.schemaHeader = header;
      await this.makeRoom((w) => w.schemaSize(header));
      if (!this.storeOnly) await this.out.writer.writeSchema(header);
      await this.sink?.writeSchema(header);
    });
  }

  append(frame: Frame): Promise<void> {
    return this.run(async () => {
      if (!this.schemaHeader) {
        throw new InvalidArgumentError(`flight "${this.path}": a batch arrived before the schema`);
      }
      const size = frame.header.length + bodyLength(frame);
      this.host.admit(this, size);
      received(size);
      await this.makeRoom((w) => w.sizeOf(frame));
      if (!this.storeOnly) await this.out.writer.append(frame);
      await this.sink?.writeMessage(frame);
      this.kinds.push(frame.kind);
      this.sizes.push(size);
      if (frame.kind === 'batch') this.records += frame.rows;
      this.data += size;
    });
  }

  commit(): Promise<FlightVersion> {
    return this.run(async () => {
      const schema = this.schemaHeader;
      if (!schema) throw new InvalidArgumentError(`flight "${this.path}": the put ended without a schema`);
      await this.makeRoom((w) => w.trailerSize());
      const placement = this.storeOnly ? undefined : await this.out.finish();
      const copied = this.identity;
      const now = copied?.createdAt ?? this.host.now();
      const ttl = this.cls.config.ttl;
      const expiresAt = copied ? copied.expiresAt : ttl === undefined ? undefined : now + ttl;
      const tag = copied?.tag ?? newVersionTag();
      const firstCreatedAt = copied?.firstCreatedAt ?? this.host.current(this.path)?.firstCreatedAt ?? now;
      let durable: DurableCopy | undefined;
      try {
        // Strong durability: acknowledged only once the store confirms the whole object.
        const meta = {
          path: this.path,
          createdAt: now,
          expiresAt,
          totalRecords: this.records,
          totalBytes: this.data,
          tag,
          firstCreatedAt,
          owner: this.owner,
        };
        if (this.sink) {
          const object = await this.sink.finish(meta);
          durable = { store: this.sink.store, key: this.sink.key, state: 'stored', object, seconds: this.sink.seconds };
        }
      } catch (err) {
        // The tier copy goes too.
        if (placement) await this.out.discard(placement);
        throw err;
      }
      if (this.state !== 'open') {
        if (placement) await this.out.discard(placement);
        throw this.cancelled();
      }
      const newer = copied && this.host.current(this.path);
      if (newer && newer.createdAt > now) {
        // A copy that arrives after a newer version of its path (copies can overtake each other): not kept.
        if (placement) await this.out.discard(placement);
        this.state = 'committed';
        this.host.sessionEnded(this);
        return newer;
      }
      const version = new FlightVersion({
        path: this.path,
        cls: this.cls,
        schemaHeader: internSchema(schema),
        // Copied at their exact length (arrays grown by push keep spare room).
        kinds: this.kinds.slice(),
        sizes: this.sizes.slice(),
        totalRecords: this.records,
        totalBytes: this.data,
        createdAt: now,
        expiresAt,
        tag,
        firstCreatedAt,
        owner: this.owner,
      });
      this.state = 'committed';
      this.host.publish(version, placement, this.tierIndex, durable);
      this.host.sessionEnded(this);
      await this.host.landed(version, copied !== undefined);
      return version;
    });
  }

  /** Idempotent: waits for the write in progress, then returns every byte this put charged. */
  async abort(): Promise<void> {
    if (this.state !== 'open') return;
    this.state = 'aborted';
    this.sink?.abort();
    await this.busy;
    await this.out.abort();
    this.host.sessionEnded(this);
  }

  private run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.state !== 'open') return Promise.reject(this.cancelled());
    const p = this.busy.then(fn);
    this.busy = p.catch(() => undefined);
    return p;
  }

  /**
   * Charges what the next write needs in the current tier, spilling to the next tier when
   * it does not fit. The size is asked of the current writer each time round: tiers frame
   * the same message differently.
   */
  private async makeRoom(size: (writer: PlacementWriter) => number): Promise<void> {
    for (;;) {
      if (this.state !== 'open') throw this.cancelled();
      if (this.storeOnly) return;
      const bytes = size(this.out.writer);
      let reason = this.out.tooBig(bytes, spillLeeway(this.cls.config.tiers, this.tierIndex));
      // Too big for the tier stays too big; a tier without room may have it in a while.
      let retry: RetryHint | undefined = RETRY_NEVER;
      if (reason === undefined) {
        try {
          await this.out.room(bytes);
          return;
        } catch (err) {
          if (!(err instanceof ResourceExhaustedError)) throw err;
          reason = err.message;
          retry = err.retry;
        }
      }
      await this.spill(reason, retry);
    }
  }

  /**
   * A durable class's flight that fits no tier continues to the durable store only: what
   * the tier holds is dropped (a strong put's sink already has it; a weak put starts one
   * and replays it), and the put is acknowledged once the store has the object.
   */
  private async toStoreOnly(reason: string): Promise<void> {
    if (!this.sink) {
      const sink = this.host.strongSink(this.cls, this.path, true);
      if (!sink) throw new Error(`class "${this.cls.config.name}" has no durable store`);
      this.sink = sink;
      if (this.schemaHeader) {
        await sink.writeSchema(this.schemaHeader);
        for await (const frame of this.out.writer.written()) await sink.writeMessage(frame);
      }
    }
    this.storeOnly = true;
    await this.out.abort();
    this.host.log.debug({ path: this.path, reason }, 'flight fits no tier: writing it to the durable store only');
  }

  /** Moves what was written to the next tier and continues there, or rejects the put. */
  private async spill(reason: string, retry: RetryHint | undefined): Promise<void> {
    const next = this.tierIndex + 1;
    const tier = this.tier;
    const last = next >= this.cls.config.tiers.length;
    if (this.cls.config.durability !== 'none' && last) {
      await this.toStoreOnly(reason);
      return;
    }
    if (tier.uploadSpill !== 'spill' || last) {
      throw new ResourceExhaustedError(
        `flight "${this.path}": ${reason} in tier ${this.tierIndex} (${this.storage.name}) of class ` +
          `"${this.cls.config.name}", and ${tier.uploadSpill === 'spill' ? 'there is no next tier' : 'uploadSpill is "reject"'}`,
        retry,
      );
    }
    const from = this.tierIndex;
    const old = this.out;
    this.tierIndex = next;
    this.out = this.host.copyInto(this.tier, this.path);
    try {
      const schema = this.schemaHeader;
      if (schema) {
        const target = this.out;
        await this.makeRoom((w) => w.schemaSize(schema));
        // A further spill inside makeRoom has already written the schema to the copy that replaced this one.
        if (this.out === target) await target.writer.writeSchema(schema);
        for await (const frame of old.writer.written()) {
          await this.makeRoom((w) => w.sizeOf(frame));
          await this.out.writer.append(frame);
        }
      }
    } finally {
      await old.abort();
    }
    const storage = (tier: number): StorageTypeName => (this.cls.config.tiers[tier] as TierConfig).storage;
    this.host.emit({ type: 'spill', cls: this.cls, from: storage(from), to: storage(next) });
    this.host.log.debug({ path: this.path, fromTier: from, toTier: next, reason }, 'upload spilled to the next tier');
  }

  private cancelled(): CancelledError {
    return new CancelledError(`flight "${this.path}": the put has already ended`);
  }
}
