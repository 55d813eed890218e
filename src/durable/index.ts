import type { DurableStoreConfig } from '../config/schema.js';
import type { DurableStore } from './durable-store.js';
import { FilesystemStore } from './filesystem-store.js';
import { S3Store } from './s3-store.js';

/** Creates one durable store from its config entry (DESIGN.md §5). */
export function createDurableStore(config: DurableStoreConfig): DurableStore {
  switch (config.type) {
    case 'filesystem':
      return new FilesystemStore(config.id, config.path);
    case 's3':
      return new S3Store({
        id: config.id,
        bucket: config.bucket,
        region: config.region,
        forcePathStyle: config.forcePathStyle,
        ...(config.endpoint ? { endpoint: config.endpoint } : {}),
      });
  }
}
