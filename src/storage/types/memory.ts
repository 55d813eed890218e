import { ByteBudget, type Frame, type Placement, type PlacementWriter, type StorageType } from '../storage-type.js';

/** Bytes a message holds in memory: its received buffer when kept whole, else its parts. */
export function heldBytes(m: { header: Buffer; body: Buffer; appMetadata: Buffer; prefixed?: Buffer }): number {
  return m.prefixed ? m.prefixed.length : m.header.length + m.body.length + m.appMetadata.length;
}

/**
 * The `memory` storage type: a flight is the list of buffers it arrived in (slices of
 * grpc-js's receive buffers), replayed as they are.
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

class MemoryWriter implements PlacementWriter {
  readonly storage = 'memory' as const;
  private readonly frames: Frame[] = [];
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
    this.frames.push(frame);
    this.bytes += heldBytes(frame);
  }

  async *written(): AsyncIterable<Frame> {
    yield* this.frames;
  }

  async finish(): Promise<Placement> {
    return new MemoryPlacement(this.frames, this.bytes);
  }

  async abort(): Promise<void> {
    this.frames.length = 0;
  }
}

class MemoryPlacement implements Placement {
  readonly storage = 'memory' as const;

  constructor(
    private frames: Frame[],
    readonly bytes: number,
  ) {}

  async *read(indices: readonly number[]): AsyncIterable<Frame> {
    for (const i of indices) {
      const frame = this.frames[i];
      if (!frame) throw new Error(`memory placement has no message ${i}`);
      yield frame;
    }
  }

  async destroy(): Promise<void> {
    this.frames = [];
  }
}
