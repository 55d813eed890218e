import type { DurableStoreConfig } from '../config/schema.js';
import type { DurableStore } from './durable-store.js';
import { FilesystemStore } from './filesystem-store.js';
import { TracedStore } from './traced-store.js';
import { tracing } from '../core/trace.js';

/**
 * Creates one durable store from its config entry (DESIGN.md §5). The AWS SDK is loaded
 * only for an `s3` store: it is the largest thing on the heap otherwise, and every major
 * GC marks the heap again.
 */
export async function createDurableStore(config: DurableStoreConfig): Promise<DurableStore> {
  const store = await createStore(config);
  // With tracing on, its requests are spans of the calls that wait on them.
  return tracing() ? new TracedStore(store) : store;
}

async function createStore(config: DurableStoreConfig): Promise<DurableStore> {
  switch (config.type) {
    case 'filesystem':
      return new FilesystemStore(config.id, config.path);
    case 's3': {
      const { S3Store } = await import('./s3-store.js');
      return new S3Store({
        id: config.id,
        bucket: config.bucket,
        region: config.region,
        forcePathStyle: config.forcePathStyle,
        ...(config.endpoint ? { endpoint: config.endpoint } : {}),
      });
    }
  }
}
