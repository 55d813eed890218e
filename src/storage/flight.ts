import { randomBytes } from 'node:crypto';
import type { StorageTypeName } from '../config/schema.js';
import { InvalidArgumentError } from '../errors.js';
import type { DurableStore, ObjectInfo } from '../durable/durable-store.js';
import type { FlightObject } from '../durability/flight-object.js';
import type { RoutedClass } from '../routing/router.js';
import type { FlightPath } from '../core/path.js';
import type { Frame, Placement } from './storage-type.js';
import { internSchema } from './schema-intern.js';

/** A half-open range of record-batch indices. */
export interface BatchRange {
  from: number;
  to: number;
}

/**
 * Why a flight (or one copy of it) stopped being visible or left a tier. Every placement
 * decision carries one, for logs and metrics.
 */
/** `handover`: another cluster node owns the path now (the durable copy, if any, stays). */
export type RemovalReason = 'replace' | 'delete' | 'evict' | 'expire' | 'move' | 'promote' | 'handover';

/**
 * A version's bytes in one tier of its class. A reader pins the copy it streams from, so
 * the copy outlives an eviction, move or replace until the last reader finishes.
 */
export class Placed {
  pins = 0;
  retired: RemovalReason | undefined;
  /**
   * Its version was replaced, but tickets issued for it are honoured until then
   * (`server.ticketGrace`): the copy stays, first in eviction order, and eviction under
   * pressure may end the grace early.
   */
  graceUntil: number | undefined;
  /**
   * A clean copy: the copy a promotion left below its version's current one, the same
   * bytes. Not current; first after ticket copies in its storage type's eviction order
   * (dropping it loses nothing), and made current again, instead of writing the flight
   * anew, when the current copy leaves for this tier (eviction with evictionSpill, a move).
   */
  clean = false;
  // Its place in its storage type's eviction order (see EvictionOrder), while it has one:
  // fields of the copy itself rather than entries of maps.
  orderPriority: number | undefined;
  orderPrev: Placed | undefined;
  orderNext: Placed | undefined;

  constructor(
    readonly version: FlightVersion,
    /** Its tier in the class; a config reload may renumber it. */
    public tierIndex: number,
    readonly placement: Placement,
  ) {}

  get storage(): StorageTypeName {
    return this.placement.storage;
  }

  get bytes(): number {
    return this.placement.bytes;
  }
}

/** A version's copy in its class's durable store. */
export interface DurableCopy {
  store: DurableStore;
  key: string;
  /** `pending` until a weak upload lands; `failed` after a permanent store error. */
  state: 'pending' | 'stored' | 'failed';
  /** The object's message index, once stored: what a restore reads by. */
  object?: FlightObject;
  /** How long a strong put's object took to reach the store. */
  seconds?: number;
  /**
   * What the store's listing said of the object (size, version, time): all there is of a
   * flight found at a start until its manifest is read, and what handover compares.
   */
  listed?: ObjectInfo;
}

export type FlightVersionInit = Pick<
  FlightVersion,
  'path' | 'cls' | 'schemaHeader' | 'totalRecords' | 'totalBytes' | 'createdAt' | 'expiresAt' | 'tag'
> &
  Partial<Pick<FlightVersion, 'firstCreatedAt' | 'owner'>> & {
    /** Each message's kind and Arrow IPC bytes, in order. */
    kinds: readonly Frame['kind'][];
    sizes: readonly number[];
  };

/**
 * Who a version is across a cluster: a copy made for a replica or a handover keeps the
 * primary's tag and times, so the tickets the primary hands out read it on every owner.
 */
export interface VersionIdentity {
  tag: string;
  createdAt: number;
  firstCreatedAt: number;
  expiresAt?: number;
  owner?: string;
}

/** A fresh version tag: 48 random bits, short enough for every ticket. */
export function newVersionTag(): string {
  return randomBytes(6).toString('base64url');
}

const NO_BYTES = Buffer.alloc(0);

/**
 * One immutable version of a flight: its schema, message kinds and totals. Where its bytes
 * live (`placed`) changes as it spills, moves and is promoted; a put to an existing path
 * publishes a new version instead. A version found in a durable store by listing it
 * (a start, a handover) is `unread` until its manifest is read: it is known by its path
 * and object, counted by its listed size, and filled in (`fill`) before anything that
 * needs its schema, totals, tag or expiry uses it.
 */
export class FlightVersion {
  /** Only its durable object is known (listed), not yet its manifest: see `fill`. */
  unread = false;
  /** Reading the manifest of an unread version, shared by concurrent callers. */
  loading: Promise<void> | undefined;
  /** The current ephemeral copy; undefined when only the durable copy is left. */
  placed: Placed | undefined;
  /** Its clean copy one tier below `placed`, kept since a promotion (see Placed.clean). */
  clean: Placed | undefined;
  durable: DurableCopy | undefined;
  /** A restore from the durable store in progress, shared by concurrent readers. */
  restoring: Promise<void> | undefined;
  /** Set once the version is no longer visible. */
  retired: RemovalReason | undefined;
  lastAccess: number;
  /** Recent read times, for promoteAfter (only in tiers that have it). */
  accesses: number[] | undefined;
  /** A copy to another tier is being written. */
  relocating = false;
  /**
   * A move down in progress (evict, move, spill), which never rejects: a weak upload waits
   * for it, to read the copy the flight ends up in.
   */
  settling: Promise<unknown> | undefined;
  /** Pinned by an operator (`pin`): never evicted or moved down; still counted by the limits. */
  pinned = false;
  /** Until when the tickets handed out for this version are honoured (GetFlightInfo, RenewFlightEndpoint). */
  ticketsUntil = 0;
  /** Its durable bytes as the catalog's stats count them now (see Catalog.durableChanged). */
  countedDurable = 0;
  // The manifest's facts: set at construction, or once by `fill` for an unread version.
  /**
   * Each message's Arrow IPC bytes (header and body) times two, plus one for a dictionary
   * batch: kinds and sizes in one array of numbers, the cheapest form a million flights
   * can keep.
   */
  private messages: readonly number[];
  /** Message index of each record batch, made when first needed (ranges, endpoints). */
  private batches: readonly number[] | undefined;

  readonly path: FlightPath;
  /** Its storage class; a config reload may route it to the new version of it. */
  cls: RoutedClass;
  schemaHeader: Buffer;
  totalRecords: number;
  /** Arrow IPC bytes (headers and bodies), as reported in `total_bytes`; an unread version's object size. */
  totalBytes: number;
  createdAt: number;
  expiresAt: number | undefined;
  /**
   * Names this version in tickets, so a ticket never reads another version of its path.
   * Kept in the durable object, so tickets outlive a restart.
   */
  tag: string;
  /** When the path's first version was written: kept when the path is overwritten (DESIGN §6). */
  firstCreatedAt: number;
  /** The owner (`x-tierflight-owner`) whose put wrote this version, if it named one. */
  owner: string | undefined;

  constructor(init: FlightVersionInit) {
    this.path = init.path;
    this.cls = init.cls;
    this.schemaHeader = init.schemaHeader;
    this.messages = encodeMessages(init.kinds, init.sizes);
    this.totalRecords = init.totalRecords;
    this.totalBytes = init.totalBytes;
    this.createdAt = init.createdAt;
    this.expiresAt = init.expiresAt;
    this.tag = init.tag;
    this.firstCreatedAt = init.firstCreatedAt ?? init.createdAt;
    this.owner = init.owner;
    this.lastAccess = init.createdAt;
  }

  get identity(): VersionIdentity {
    return {
      tag: this.tag,
      createdAt: this.createdAt,
      firstCreatedAt: this.firstCreatedAt,
      ...(this.expiresAt !== undefined ? { expiresAt: this.expiresAt } : {}),
      ...(this.owner !== undefined ? { owner: this.owner } : {}),
    };
  }

  /**
   * A version known only by its object in a durable store (a listing): counted by the
   * object's size and time until `fill` reads its manifest. Its expiry is unknown until then.
   */
  static unread(path: FlightPath, cls: RoutedClass, store: DurableStore, listed: ObjectInfo): FlightVersion {
    const at = listed.modifiedAt ?? 0;
    const version = new FlightVersion({
      path,
      cls,
      schemaHeader: NO_BYTES,
      kinds: [],
      sizes: [],
      totalRecords: 0,
      totalBytes: listed.size,
      createdAt: at,
      expiresAt: undefined,
      tag: '',
    });
    version.unread = true;
    version.durable = { store, key: listed.key, state: 'stored', listed };
    return version;
  }

  /** Fills an unread version in from its manifest (the object read from its store). */
  fill(object: FlightObject): void {
    this.schemaHeader = internSchema(object.schemaHeader);
    this.messages = encodeMessages(
      object.index.map((e) => e.kind),
      object.index.map((e) => e.headerLength + e.bodyLength),
    );
    this.batches = undefined;
    this.totalRecords = object.totalRecords;
    this.totalBytes = object.totalBytes;
    this.createdAt = object.createdAt;
    this.expiresAt = object.expiresAt;
    this.tag = object.tag;
    this.firstCreatedAt = object.firstCreatedAt ?? object.createdAt;
    this.owner = object.owner;
    this.lastAccess = Math.max(this.lastAccess, object.createdAt);
    if (this.durable) this.durable.object = object;
    this.unread = false;
  }

  /** The version a flight object read back from a durable store or the spool describes. */
  static fromObject(object: FlightObject, cls: RoutedClass): FlightVersion {
    return new FlightVersion({
      path: object.path,
      cls,
      schemaHeader: internSchema(object.schemaHeader),
      kinds: object.index.map((e) => e.kind),
      sizes: object.index.map((e) => e.headerLength + e.bodyLength),
      totalRecords: object.totalRecords,
      totalBytes: object.totalBytes,
      createdAt: object.createdAt,
      expiresAt: object.expiresAt,
      tag: object.tag,
      firstCreatedAt: object.firstCreatedAt ?? object.createdAt,
      owner: object.owner,
    });
  }

  /** How many IPC messages (dictionary and record batches) the flight has. */
  get messageCount(): number {
    return this.messages.length;
  }

  kindOf(index: number): Frame['kind'] {
    return ((this.messages[index] as number) & 1) === 1 ? 'dictionary' : 'batch';
  }

  /** A message's Arrow IPC bytes (header and body). */
  sizeOf(index: number): number {
    return Math.floor((this.messages[index] as number) / 2);
  }

  /** Message index of each record batch, in order. */
  get batchIndex(): readonly number[] {
    if (this.batches) return this.batches;
    const out: number[] = [];
    for (let i = 0; i < this.messages.length; i++) if (this.kindOf(i) === 'batch') out.push(i);
    this.batches = out.slice();
    return this.batches;
  }

  get tierIndex(): number | undefined {
    return this.placed?.tierIndex;
  }

  get storage(): StorageTypeName | undefined {
    return this.placed?.storage;
  }

  get heldBytes(): number {
    return this.placed?.bytes ?? 0;
  }

  get batchCount(): number {
    return this.batchIndex.length;
  }

  isExpired(now: number): boolean {
    return this.expiresAt !== undefined && now >= this.expiresAt;
  }

  /**
   * Batch ranges of at most `maxBytes` each (a larger batch gets a range of its own), so
   * clients can fetch a large flight over several streams in parallel.
   */
  endpointRanges(maxBytes: number): BatchRange[] {
    const n = this.batchIndex.length;
    if (n === 0 || this.totalBytes <= maxBytes) return [{ from: 0, to: n }];
    const ranges: BatchRange[] = [];
    let from = 0;
    let bytes = 0;
    for (let b = 0; b < n; b++) {
      const size = this.sizeOf(this.batchIndex[b] as number);
      if (b > from && bytes + size > maxBytes) {
        ranges.push({ from, to: b });
        from = b;
        bytes = 0;
      }
      bytes += size;
    }
    ranges.push({ from, to: n });
    return ranges;
  }

  /** Every message index, in order. */
  allMessages(): number[] {
    return Array.from({ length: this.messages.length }, (_, i) => i);
  }

  /**
   * The messages to replay for a batch range: every dictionary message that precedes
   * the first batch of the range (a reader needs the dictionaries' state), then the
   * range's batches with the dictionary deltas between them.
   */
  messagesFor(range?: BatchRange): number[] {
    const n = this.batchIndex.length;
    if (!range) return this.allMessages();
    const { from, to } = range;
    if (from > to || to > n) {
      throw new InvalidArgumentError(
        `flight "${this.path}": batches ${from}..${to} are outside this version's ${n} batches`,
      );
    }
    const out: number[] = [];
    if (from === to) {
      // An empty range still replays the dictionaries so the stream is self-describing.
      for (let i = 0; i < this.messages.length; i++) if (this.kindOf(i) === 'dictionary') out.push(i);
      return out;
    }
    const start = from === 0 ? 0 : (this.batchIndex[from] as number);
    const end = to === n ? this.messages.length : (this.batchIndex[to] as number);
    for (let i = 0; i < start; i++) if (this.kindOf(i) === 'dictionary') out.push(i);
    for (let i = start; i < end; i++) out.push(i);
    return out;
  }
}

/** Kinds and sizes as one exact-length array: size × 2, plus 1 for a dictionary batch. */
function encodeMessages(kinds: readonly Frame['kind'][], sizes: readonly number[]): number[] {
  const out = new Array<number>(kinds.length);
  for (let i = 0; i < kinds.length; i++) out[i] = (sizes[i] as number) * 2 + (kinds[i] === 'dictionary' ? 1 : 0);
  return out;
}
