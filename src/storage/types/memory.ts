import { dropped } from '../../core/garbage.js';
import { bodyLength, prefixedLength } from '../../ipc/frame.js';
import { ByteBudget, type Frame, type Placement, type PlacementWriter, type StorageType } from '../storage-type.js';

/** Bytes a message holds in memory: what it was received in when kept so, else its parts. */
export function heldBytes(m: Frame): number {
  return m.prefixed ? prefixedLength(m) : m.header.length + bodyLength(m) + m.appMetadata.length;
}

/**
 * The `memory` storage type: a flight is the list of buffers it arrived in (grpc-js's
 * receive buffers, or for a large message the socket reads that carried it), replayed as
 * they are.
 */
export class MemoryStorageType extends ByteBudget implements StorageType {
  constructor(capacity: number) {
    super('memory', capacity);
  }

  async init(): Promise<void> {}

  createWriter(): PlacementWriter {
    return new MemoryWriter();
  }
}

/**
 * A message as the memory tier keeps it when it arrived whole in one received buffer
 * (`prefixed`): that buffer and where each part lies in it, as numbers. A Frame holds four
 * Buffer views for the same bytes, over 400 bytes of objects per message; this holds one
 * reference, and the views are made again when the message is read.
 */
class HeldMessage {
  constructor(
    private readonly bytes: ArrayBufferLike,
    private readonly start: number,
    private readonly length: number,
    private readonly headerAt: number,
    private readonly headerLength: number,
    private readonly bodyAt: number,
    private readonly bodyLength: number,
    private readonly metaAt: number,
    private readonly metaLength: number,
    private readonly rows: number,
    private readonly dictionary: boolean,
  ) {}

  /** The message as a Frame, or undefined when its parts do not all lie in the received buffer. */
  static of(frame: Frame): HeldMessage | undefined {
    const prefixed = frame.prefixed;
    // A message held in pieces is kept as its Frame (its pieces are many buffers anyway).
    if (!prefixed || frame.bodyPieces || frame.prefixedRest) return undefined;
    const parts = [frame.header, frame.body, frame.appMetadata];
    if (!parts.every((p) => p.length === 0 || p.buffer === prefixed.buffer)) return undefined;
    const at = (p: Buffer): number => (p.length === 0 ? 0 : p.byteOffset);
    return new HeldMessage(
      prefixed.buffer,
      prefixed.byteOffset,
      prefixed.length,
      at(frame.header),
      frame.header.length,
      at(frame.body),
      frame.body.length,
      at(frame.appMetadata),
      frame.appMetadata.length,
      frame.rows,
      frame.kind === 'dictionary',
    );
  }

  get frame(): Frame {
    const view = (at: number, length: number): Buffer => (length === 0 ? EMPTY : Buffer.from(this.bytes, at, length));
    return {
      kind: this.dictionary ? 'dictionary' : 'batch',
      header: view(this.headerAt, this.headerLength),
      body: view(this.bodyAt, this.bodyLength),
      appMetadata: view(this.metaAt, this.metaLength),
      prefixed: Buffer.from(this.bytes, this.start, this.length),
      rows: this.rows,
    };
  }
}

const EMPTY = Buffer.alloc(0);

class MemoryWriter implements PlacementWriter {
  readonly storage = 'memory' as const;
  private readonly frames: (Frame | HeldMessage)[] = [];
  private bytes = 0;

  schemaSize(header: Buffer): number {
    return header.length;
  }

  sizeOf(frame: Frame): number {
    return heldBytes(frame);
  }

  trailerSize(): number {
    return 0;
  }

  async writeSchema(header: Buffer): Promise<void> {
    this.bytes += header.length;
  }

  async append(frame: Frame): Promise<void> {
    this.frames.push(HeldMessage.of(frame) ?? frame);
    this.bytes += heldBytes(frame);
  }

  async *written(): AsyncIterable<Frame> {
    for (const m of this.frames) yield m instanceof HeldMessage ? m.frame : m;
  }

  async finish(): Promise<Placement> {
    // At its exact length: an array grown by push keeps room for more.
    return new MemoryPlacement(this.frames.slice(), this.bytes);
  }

  async abort(): Promise<void> {
    this.frames.length = 0;
  }
}

class MemoryPlacement implements Placement {
  readonly storage = 'memory' as const;

  constructor(
    private frames: (Frame | HeldMessage)[],
    readonly bytes: number,
  ) {}

  async *read(indices: readonly number[]): AsyncIterable<Frame> {
    for (const i of indices) {
      const m = this.frames[i];
      if (!m) throw new Error(`memory placement has no message ${i}`);
      yield m instanceof HeldMessage ? m.frame : m;
    }
  }

  async destroy(): Promise<void> {
    this.frames = [];
    // Its buffers are garbage now: core/garbage.ts may ask V8 to collect them.
    dropped(this.bytes);
  }
}
