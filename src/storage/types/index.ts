import type { Config, StorageTypeName } from '../../config/schema.js';
import type { StorageType } from '../storage-type.js';
import { FileStorageType } from './file.js';
import { MemoryStorageType } from './memory.js';

/** Creates the configured storage types (DESIGN.md §3). */
export function createStorageTypes(spec: Config['storageTypes']): Map<StorageTypeName, StorageType> {
  const types = new Map<StorageTypeName, StorageType>();
  if (spec.memory) types.set('memory', new MemoryStorageType(spec.memory.capacity));
  if (spec.disk_mapped) {
    types.set(
      'disk_mapped',
      new FileStorageType('disk_mapped', spec.disk_mapped.path, spec.disk_mapped.capacity, 'file'),
    );
  }
  if (spec.disk) types.set('disk', new FileStorageType('disk', spec.disk.path, spec.disk.capacity, 'stream'));
  return types;
}
