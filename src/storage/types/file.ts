import { access, mkdir, open, readdir, rename, rm, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { StorageTypeName } from '../../config/schema.js';
import { ResourceExhaustedError, retryHere } from '../../errors.js';

import { buildFooter, FILE_MAGIC, footerSize, type Block } from '../../ipc/file-layout.js';
import { END_OF_STREAM, framedSize, pad8 } from '../../ipc/ipc-stream.js';
import { bodyLength } from '../../ipc/frame.js';
import { IpcFramer, type Framed } from '../../ipc/ipc-framer.js';
import type { BufferPool } from '../../core/buffer-pool.js';
import { entryAt, frameFor, type IndexEntry } from '../../ipc/stream-reader.js';
import {
  ByteBudget,
  type Frame,
  type Placement,
  type PlacementWriter,
  type StorageType,
  type StreamFile,
} from '../storage-type.js';

/** A full disk frees up as eviction and expiry run: a writer is told to wait this long. */
const DISK_FULL_RETRY_MS = 5000;

/**
 * The disk storage types. `disk_mapped` writes the Arrow IPC *file* layout (footer with a
 * batch index) and serves any message with positioned reads from the page cache, several
 * at once; `disk` writes the *stream* layout and reads it sequentially, one message after
 * the other, each straight into the buffer it is sent from. Both keep a small index in
 * memory (offsets, kinds, app_metadata) so a batch range never loads the whole file.
 *
 * Files are named by a counter, never by flight path, so no path can reach outside the
 * directory. Each is written as `*.tmp` and renamed when complete.
 */
export type FileLayout = 'file' | 'stream';

const FILE_NAME = /^flight-\d+\.arrows?(\.tmp)?$/;
/** Messages `disk_mapped` reads ahead of the consumer, so the disk works while gRPC sends. */
const READ_AHEAD = 4;

export class FileStorageType extends ByteBudget implements StorageType {
  private files = 0;

  constructor(
    name: Exclude<StorageTypeName, 'memory'>,
    readonly dir: string,
    capacity: number,
    readonly layout: FileLayout,
  ) {
    super(name, capacity);
  }

  /** Creates the directory and removes flight files a previous run left behind. */
  async init(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    for (const entry of await readdir(this.dir)) {
      // Only our own file names: a misconfigured path never loses someone else's files.
      if (FILE_NAME.test(entry)) await rm(path.join(this.dir, entry), { force: true });
    }
  }

  createWriter(): PlacementWriter {
    const ext = this.layout === 'file' ? 'arrow' : 'arrows';
    return new FileWriter(
      this.name as Exclude<StorageTypeName, 'memory'>,
      path.join(this.dir, `flight-${++this.files}.${ext}`),
      this.layout,
    );
  }
}

class FileWriter implements PlacementWriter {
  private fh: FileHandle | undefined;
  private schema: Buffer | undefined;
  private readonly framer = new IpcFramer();
  private state: 'open' | 'finished' | 'aborted' = 'open';

  constructor(
    readonly storage: Exclude<StorageTypeName, 'memory'>,
    private readonly finalPath: string,
    private readonly layout: FileLayout,
  ) {}

  private get tmpPath(): string {
    return `${this.finalPath}.tmp`;
  }

  schemaSize(header: Buffer): number {
    return (this.layout === 'file' ? FILE_MAGIC.length : 0) + framedSize(header.length, 0);
  }

  sizeOf(frame: Frame): number {
    return framedSize(frame.header.length, bodyLength(frame));
  }

  trailerSize(): number {
    if (!this.schema) return 0;
    let dictionaries = 0;
    const index = this.framer.index;
    for (const e of index) if (e.kind === 'dictionary') dictionaries++;
    const eos = END_OF_STREAM.length;
    return this.layout === 'file' ? eos + footerSize(this.schema, dictionaries, index.length - dictionaries) : eos;
  }

  async writeSchema(header: Buffer): Promise<void> {
    this.fh = await open(this.tmpPath, 'wx');
    if (this.state !== 'open') {
      await this.abort();
      return;
    }
    this.schema = header;
    if (this.layout === 'file') await this.write(this.framer.raw([FILE_MAGIC]));
    await this.write(this.framer.schema(header));
  }

  async append(frame: Frame): Promise<void> {
    await this.write(this.framer.message(frame));
  }

  written(): AsyncIterable<Frame> {
    const index = this.framer.index;
    return readAhead(
      this.tmpPath,
      index,
      index.map((_, i) => i),
      READ_AHEAD,
      undefined,
    );
  }

  async finish(): Promise<Placement> {
    const fh = this.handle();
    const trailer: Buffer[] = [END_OF_STREAM];
    if (this.layout === 'file') {
      const blocks = (kind: Frame['kind']): Block[] =>
        this.framer.index
          .filter((e) => e.kind === kind)
          .map((e) => ({
            offset: e.headerAt - 8,
            metaDataLength: e.bodyAt - e.headerAt + 8,
            bodyLength: pad8(e.bodyLength),
          }));
      trailer.push(buildFooter(this.schema as Buffer, blocks('dictionary'), blocks('batch')));
    }
    await this.write(this.framer.raw(trailer));
    await fh.close();
    this.fh = undefined;
    await rename(this.tmpPath, this.finalPath);
    this.state = 'finished';
    return new FilePlacement(this.storage, this.finalPath, this.layout, this.framer.index, this.framer.bytes);
  }

  async abort(): Promise<void> {
    if (this.state === 'aborted') return;
    this.state = 'aborted';
    const fh = this.fh;
    this.fh = undefined;
    await fh?.close().catch(() => undefined);
    await rm(this.tmpPath, { force: true });
  }

  private handle(): FileHandle {
    if (!this.fh || this.state !== 'open') throw new Error(`${this.storage} writer for ${this.finalPath} is not open`);
    return this.fh;
  }

  private async write({ buffers, at }: Framed): Promise<void> {
    const fh = this.handle();
    const pending = buffers.filter((b) => b.length > 0);
    let position = at;
    try {
      // A short write on a regular file means the disk (or the file size limit) ran out;
      // writing the rest then reports why.
      while (pending.length > 0) {
        let { bytesWritten } = await fh.writev(pending, position);
        if (bytesWritten === 0) throw Object.assign(new Error('no bytes written'), { code: 'ENOSPC' });
        position += bytesWritten;
        while (pending.length > 0 && bytesWritten >= (pending[0] as Buffer).length) {
          bytesWritten -= (pending.shift() as Buffer).length;
        }
        if (bytesWritten > 0) pending[0] = (pending[0] as Buffer).subarray(bytesWritten);
      }
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOSPC' || code === 'EFBIG' || code === 'EDQUOT') {
        throw new ResourceExhaustedError(
          `${this.storage}: cannot write ${path.basename(this.finalPath)}: the disk is full (${code})`,
          retryHere(DISK_FULL_RETRY_MS),
        );
      }
      throw err;
    }
  }
}

class FilePlacement implements Placement {
  readonly streamFile: StreamFile | undefined;

  constructor(
    readonly storage: Exclude<StorageTypeName, 'memory'>,
    readonly file: string,
    private readonly layout: FileLayout,
    private readonly index: readonly IndexEntry[],
    readonly bytes: number,
  ) {
    this.streamFile = layout === 'stream' ? { path: file, index, bytes } : undefined;
  }

  read(indices: readonly number[], pool?: BufferPool): AsyncIterable<Frame> {
    return readAhead(this.file, this.index, indices, this.layout === 'file' ? READ_AHEAD : 1, pool);
  }

  async intact(): Promise<boolean> {
    try {
      await access(this.file);
      return true;
    } catch {
      return false;
    }
  }

  async destroy(): Promise<void> {
    await rm(this.file, { force: true });
  }
}

/**
 * Reads messages header then body straight into the buffers they are sent from, `ahead`
 * messages ahead of the consumer: several at once for `disk_mapped`, one after the other
 * (the next while the current is sent) for `disk`.
 */
async function* readAhead(
  file: string,
  index: readonly IndexEntry[],
  indices: readonly number[],
  ahead: number,
  pool: BufferPool | undefined,
): AsyncGenerator<Frame> {
  if (indices.length === 0) return;
  const fh = await open(file, 'r');
  const pending: Promise<Frame>[] = [];
  let next = 0;
  const readOne = async (e: IndexEntry): Promise<Frame> => {
    const frame = frameFor(e, pool);
    await readFully(fh, frame.header, e.headerAt);
    await readFully(fh, frame.body, e.bodyAt);
    return frame;
  };
  const fill = (): void => {
    while (pending.length < ahead && next < indices.length) {
      pending.push(readOne(entryAt(index, indices[next++] as number)));
    }
  };
  try {
    fill();
    while (pending.length > 0) {
      const frame = await (pending.shift() as Promise<Frame>);
      fill();
      yield frame;
    }
  } finally {
    await Promise.allSettled(pending);
    await fh.close();
  }
}

async function readFully(fh: FileHandle, into: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < into.length) {
    const { bytesRead } = await fh.read(into as Buffer<ArrayBuffer>, done, into.length - done, position + done);
    // A tier file cut short behind the server's back: a storage I/O failure (UNAVAILABLE).
    if (bytesRead === 0)
      throw Object.assign(new Error(`unexpected end of file at ${position + done}`), { code: 'EIO' });
    done += bytesRead;
  }
}
