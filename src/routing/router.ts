import { InvalidArgumentError } from '../errors.js';
import type { StorageClassConfig } from '../config/schema.js';
import { normalizePrefix } from '../core/path.js';

interface TrieNode<T> {
  children: Map<string, TrieNode<T>>;
  value?: T;
}

/**
 * Longest-prefix routing on whole path segments (`cache/raw` matches `cache/raw/x`, not
 * `cache/rawdata`). A trie of segments makes a lookup O(path length), whatever the
 * number of classes.
 */
export class PrefixRouter<T> {
  private readonly root: TrieNode<T> = { children: new Map() };

  add(prefixSegments: readonly string[], value: T): void {
    let node = this.root;
    for (const segment of prefixSegments) {
      let next = node.children.get(segment);
      if (!next) {
        next = { children: new Map() };
        node.children.set(segment, next);
      }
      node = next;
    }
    node.value = value;
  }

  /** The value of the longest prefix of `segments`, if any. */
  match(segments: readonly string[]): T | undefined {
    let node: TrieNode<T> | undefined = this.root;
    let best = this.root.value;
    for (const segment of segments) {
      node = node.children.get(segment);
      if (!node) break;
      if (node.value !== undefined) best = node.value;
    }
    return best;
  }
}

export interface RoutedClass {
  config: StorageClassConfig;
  /** The normalised prefix (no trailing slash; empty for the root class). */
  prefix: string;
}

/** Routes flight paths to storage classes. */
export class ClassRouter {
  private readonly trie = new PrefixRouter<RoutedClass>();
  readonly classes: readonly RoutedClass[];

  constructor(classes: readonly StorageClassConfig[]) {
    const routed: RoutedClass[] = [];
    for (const config of classes) {
      const prefix = normalizePrefix(config.prefix);
      if (!prefix.ok) throw new Error(`class "${config.name}": ${prefix.reason}`);
      const entry = { config, prefix: prefix.value };
      this.trie.add(prefix.segments, entry);
      routed.push(entry);
    }
    this.classes = routed;
  }

  /** The class for a normalised path; NOT_FOUND-style error when nothing matches. */
  route(path: string, segments: readonly string[]): RoutedClass {
    const found = this.trie.match(segments);
    if (!found) {
      throw new NoClassError(path);
    }
    return found;
  }
}

export class NoClassError extends InvalidArgumentError {
  constructor(path: string) {
    super(`no storage class matches flight "${path}" and there is no root class (prefix: "")`);
  }
}

/** A flight path's segments below its class prefix: what limit nodes are keyed by. */
export function relativeSegments(cls: RoutedClass, path: string): string[] {
  const skip = cls.prefix === '' ? 0 : cls.prefix.split('/').length;
  return path.split('/').slice(skip);
}
