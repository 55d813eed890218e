import { randomBytes } from 'node:crypto';
import { constants, createReadStream, createWriteStream } from 'node:fs';
import { appendFile, copyFile, link, mkdir, readdir, rename, rm, stat, truncate } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  checkKey,
  DurableStoreError,
  type ByteRange,
  type DurableStore,
  type FileSource,
  type ObjectInfo,
  type PutOptions,
} from './durable-store.js';

/** In-progress writes end with this; they are never listed or read. */
const TMP = '.tierflight-tmp';
/** What `link` answers when the file cannot be linked where the object goes (then it is copied). */
const LINK_REFUSED = new Set(['EXDEV', 'EPERM', 'EMLINK', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS']);

/**
 * putFile's links under way, by source file (see linkOne): for the whole process, since two
 * stores (a class's and the spool) may take the same tier file at once.
 */
const linking = new Map<string, Promise<void>>();

/**
 * A durable store in a local directory: each key is a file under the root. Writes go to a
 * temporary file in the same directory and are renamed into place, so a reader or a
 * restart never sees half an object.
 */
export class FilesystemStore implements DurableStore {
  constructor(
    readonly id: string,
    readonly root: string,
  ) {}

  async put(key: string, body: AsyncIterable<Buffer>, options: PutOptions = {}): Promise<ObjectInfo> {
    return this.publish(key, async (tmp) => {
      let size = 0;
      await pipeline(
        body,
        async function* (source: AsyncIterable<Buffer>) {
          for await (const chunk of source) {
            size += chunk.length;
            yield chunk;
          }
        },
        createWriteStream(tmp, { flags: 'wx' }),
        options.signal ? { signal: options.signal } : {},
      );
      return size;
    });
  }

  /**
   * The object shares the file's storage when it can: a hard link to the file, with the
   * tail appended past the stream (the file's owner reads only its first `source.bytes`),
   * so nothing is copied and the bytes sit on the disk once. That needs the file and the
   * store on one filesystem, and a file no object shares yet with nothing past its stream
   * (an object already linked to it has its own tail there). Otherwise the kernel copies
   * the file (`copyFile`: copy_file_range or sendfile, a reflink where the filesystem
   * clones), cuts whatever follows the stream, and appends the tail; never through the
   * process either way.
   */
  async putFile(
    key: string,
    source: FileSource,
    tail: readonly Buffer[],
    options: PutOptions = {},
  ): Promise<ObjectInfo> {
    return this.publish(key, async (tmp) => {
      options.signal?.throwIfAborted();
      const tailBytes = Buffer.concat(tail);
      if (!(await this.linkOne(source, tmp, tailBytes))) {
        await copyFile(source.path, tmp, constants.COPYFILE_EXCL | constants.COPYFILE_FICLONE);
        await truncate(tmp, source.bytes);
        await appendFile(tmp, tailBytes);
      }
      options.signal?.throwIfAborted();
      return source.bytes + tailBytes.length;
    });
  }

  /**
   * Links `source` as `tmp` and appends the tail, when no object shares the file yet;
   * false (nothing done) when it cannot. One at a time per file: two objects linked to one
   * file would write their tails over each other's place.
   */
  private linkOne(source: FileSource, tmp: string, tail: Buffer): Promise<boolean> {
    const previous = linking.get(source.path) ?? Promise.resolve();
    const attempt = previous.then(async () => {
      const before = await stat(source.path);
      if (before.nlink !== 1 || before.size !== source.bytes) return false;
      try {
        await link(source.path, tmp);
      } catch (err) {
        // Another filesystem, or one without hard links: copy instead.
        if (LINK_REFUSED.has((err as NodeJS.ErrnoException).code ?? '')) return false;
        throw err;
      }
      await appendFile(tmp, tail);
      return true;
    });
    const settled = attempt.then(
      () => undefined,
      () => undefined,
    );
    linking.set(source.path, settled);
    void settled.then(() => {
      if (linking.get(source.path) === settled) linking.delete(source.path);
    });
    return attempt;
  }

  /**
   * Writes the object into a fresh temporary file beside the key's (`write` says how many
   * bytes it wrote), then renames it into place; on any failure the temporary file goes.
   */
  private async publish(key: string, write: (tmp: string) => Promise<number>): Promise<ObjectInfo> {
    const file = this.file(key);
    await mkdir(path.dirname(file), { recursive: true }).catch((err: unknown) => this.fail(key, err));
    const tmp = `${file}.${randomBytes(6).toString('hex')}${TMP}`;
    let size = 0;
    try {
      size = await write(tmp);
      await rename(tmp, file);
    } catch (err) {
      await rm(tmp, { force: true });
      this.fail(key, err, 'transient');
    }
    const s = await stat(file).catch(() => undefined);
    return s ? infoOf(key, s) : { key, size };
  }

  async get(key: string, range?: ByteRange, signal?: AbortSignal): Promise<Readable> {
    const file = this.file(key);
    const info = await this.head(key);
    if (!info) throw new DurableStoreError('not_found', this.id, key, 'no such object');
    if (range && range.end !== undefined && range.end <= range.start) {
      throw new DurableStoreError('permanent', this.id, key, `empty byte range ${range.start}-${range.end}`);
    }
    return createReadStream(file, {
      ...(range ? { start: range.start } : {}),
      ...(range?.end !== undefined ? { end: range.end - 1 } : {}),
      ...(signal ? { signal } : {}),
    });
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    try {
      const s = await stat(this.file(key));
      return s.isFile() ? infoOf(key, s) : undefined;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') {
        return undefined;
      }
      this.fail(key, err);
    }
  }

  async delete(key: string): Promise<void> {
    await rm(this.file(key), { force: true }).catch((err: unknown) => this.fail(key, err));
  }

  /**
   * Removes temporary files of writes that never finished (a process killed mid-put), older
   * than `olderThanMs`: another server sharing the directory may be writing the newer ones.
   * Returns how many went.
   */
  async removeStaleTemporaries(olderThanMs: number): Promise<number> {
    const cutoff = Date.now() - olderThanMs;
    let removed = 0;
    const walk = async (dir: string): Promise<void> => {
      const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
      for (const e of entries) {
        const file = path.join(dir, e.name);
        if (e.isDirectory()) await walk(file);
        else if (e.name.endsWith(TMP) && ((await stat(file).catch(() => undefined))?.mtimeMs ?? Infinity) <= cutoff) {
          await rm(file, { force: true });
          removed++;
        }
      }
    };
    await walk(this.root);
    return removed;
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    // Walk from the deepest directory the prefix names; filter by the plain string prefix.
    const cut = prefix.lastIndexOf('/');
    const start = cut < 0 ? this.root : path.join(this.root, prefix.slice(0, cut));
    const found: ObjectInfo[] = [];
    const walk = async (dir: string, keyPrefix: string): Promise<void> => {
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR')
          return;
        throw err;
      }
      for (const e of entries) {
        const key = keyPrefix + e.name;
        if (e.isDirectory()) {
          if (key.startsWith(prefix) || prefix.startsWith(`${key}/`)) await walk(path.join(dir, e.name), `${key}/`);
        } else if (e.isFile() && !e.name.endsWith(TMP) && key.startsWith(prefix)) {
          const s = await stat(path.join(dir, e.name)).catch(() => undefined);
          if (s) found.push(infoOf(key, s));
        }
      }
    };
    await walk(start, cut < 0 ? '' : `${prefix.slice(0, cut)}/`);
    found.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    yield* found;
  }

  close(): void {}

  private file(key: string): string {
    checkKey(this.id, key);
    if (key.endsWith(TMP)) throw new DurableStoreError('permanent', this.id, key, 'invalid object key');
    return path.join(this.root, ...key.split('/'));
  }

  private fail(key: string, err: unknown, missing: 'not_found' | 'transient' = 'not_found'): never {
    if (err instanceof DurableStoreError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    const kind = code === 'ENOENT' ? missing : code === 'EACCES' || code === 'EPERM' ? 'permanent' : 'transient';
    throw new DurableStoreError(kind, this.id, key, (err as Error).message, { cause: err });
  }
}

/** What a stat says of an object: its size, and as its version the modification time (ns) and size. */
function infoOf(key: string, s: { size: number; mtimeMs: number }): ObjectInfo {
  return { key, size: s.size, version: `${s.mtimeMs}-${s.size}`, modifiedAt: Math.floor(s.mtimeMs) };
}
