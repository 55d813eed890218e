import { createRequire } from 'node:module';
import type sortedBTree from 'sorted-btree';

/**
 * A map kept in key order (sorted-btree's B+ tree): range iteration from any key, and far
 * less memory per entry than a Map. sorted-btree is CommonJS with an ES-style default
 * export, which ESM loaders unwrap differently; `require` always gives the same object.
 */
const { default: BTree } = createRequire(import.meta.url)('sorted-btree') as typeof sortedBTree;

export const SortedMap = BTree;
export type SortedMap<K, V> = InstanceType<typeof BTree<K, V>>;
