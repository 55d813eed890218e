import type { Readable } from 'node:stream';
import { inSpan } from '../core/trace.js';
import type { ByteRange, DurableStore, ObjectInfo, PutOptions } from './durable-store.js';

/**
 * A durable store whose requests are child spans of the call that waits on them (a strong
 * put, a restore, a manifest read): `durable put|get|head|delete` with the store and key.
 * Outside a traced call (background uploads, sweeps) it adds nothing.
 */
export class TracedStore implements DurableStore {
  readonly putFile?: DurableStore['putFile'];

  constructor(private readonly store: DurableStore) {
    const putFile = store.putFile?.bind(store);
    if (putFile) {
      this.putFile = (key, source, tail, options) =>
        inSpan('durable put', this.attributes(key), async (span) => {
          const info = await putFile(key, source, tail, options);
          span?.setAttribute('tierflight.bytes', info.size);
          return info;
        });
    }
  }

  get id(): string {
    return this.store.id;
  }

  private attributes(key: string) {
    return { 'tierflight.store': this.store.id, 'tierflight.key': key };
  }

  put(key: string, body: AsyncIterable<Buffer>, options?: PutOptions): Promise<ObjectInfo> {
    return inSpan('durable put', this.attributes(key), async (span) => {
      const info = await this.store.put(key, body, options);
      span?.setAttribute('tierflight.bytes', info.size);
      return info;
    });
  }

  get(key: string, range?: ByteRange, signal?: AbortSignal): Promise<Readable> {
    return inSpan(
      'durable get',
      { ...this.attributes(key), ...(range ? { 'tierflight.range_start': range.start } : {}) },
      () => this.store.get(key, range, signal),
    );
  }

  head(key: string): Promise<ObjectInfo | undefined> {
    return inSpan('durable head', this.attributes(key), () => this.store.head(key));
  }

  delete(key: string): Promise<void> {
    return inSpan('durable delete', this.attributes(key), () => this.store.delete(key));
  }

  list(prefix: string): AsyncIterable<ObjectInfo> {
    return this.store.list(prefix);
  }

  close(): void {
    this.store.close();
  }
}
