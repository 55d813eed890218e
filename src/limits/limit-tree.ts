import type { LimitPolicyConfig } from '../config/schema.js';
import { formatSize } from '../config/units.js';

/**
 * The limit nodes of DESIGN.md §4. A node is one limited subtree of one policy, keyed by
 * its path below the class prefix ("" for a standard policy's single node); a policy that
 * governs several classes shares a node between them for the same relative path (tenant1
 * under two classes is one tenant). Finding a flight's nodes costs O(path depth) per
 * policy; nodes of segmented and hierarchical defaults are created when a first flight
 * lands under them (so segments that appear later get their limit too) and dropped when
 * empty.
 */
export interface LimitNode {
  readonly policy: LimitPolicyConfig;
  /** The subtree below the class prefix this node limits. */
  readonly key: string;
  readonly limit: number;
  /** Where the limit comes from, for `tierflight route` and errors. */
  readonly source: 'limit' | 'default' | 'override';
  /** Bytes of the flights counted under it. */
  used: number;
  /** Bytes of puts in progress under it. */
  pending: number;
}

export class LimitTree {
  private readonly byClass = new Map<string, LimitPolicyConfig[]>();
  private readonly nodes = new Map<LimitPolicyConfig, Map<string, LimitNode>>();

  constructor(readonly policies: readonly LimitPolicyConfig[]) {
    for (const policy of policies) {
      this.nodes.set(policy, new Map());
      for (const cls of policy.classes) {
        const list = this.byClass.get(cls) ?? [];
        list.push(policy);
        this.byClass.set(cls, list);
      }
    }
  }

  /**
   * The nodes that govern a flight of class `className` whose path below the class prefix
   * has `segments`, optionally only those of one scope. Creates default nodes on demand.
   */
  nodesFor(className: string, segments: readonly string[], scope?: 'ephemeral' | 'total'): LimitNode[] {
    const out: LimitNode[] = [];
    for (const policy of this.byClass.get(className) ?? []) {
      if (scope && policy.scope !== scope) continue;
      for (const spec of specsFor(policy, segments)) out.push(this.node(policy, spec.key, spec.limit, spec.source));
    }
    return out;
  }

  /** Every node currently tracked (configured overrides and those with flights). */
  *all(): Generator<LimitNode> {
    for (const nodes of this.nodes.values()) yield* nodes.values();
  }

  /** Drops default nodes that no longer hold anything, keeping the tree bounded. */
  prune(node: LimitNode): void {
    if (node.used === 0 && node.pending === 0 && node.source !== 'override') {
      this.nodes.get(node.policy)?.delete(node.key);
    }
  }

  private node(policy: LimitPolicyConfig, key: string, limit: number, source: LimitNode['source']): LimitNode {
    const nodes = this.nodes.get(policy) as Map<string, LimitNode>;
    let node = nodes.get(key);
    if (!node) {
      node = { policy, key, limit, source, used: 0, pending: 0 };
      nodes.set(key, node);
    }
    return node;
  }
}

interface NodeSpec {
  key: string;
  limit: number;
  source: LimitNode['source'];
}

/** The subtrees of one policy that contain a flight with these relative segments. */
export function specsFor(policy: LimitPolicyConfig, segments: readonly string[]): NodeSpec[] {
  switch (policy.type) {
    case 'standard':
      return [{ key: '', limit: policy.limit, source: 'limit' }];
    case 'segmented':
      return segments.length >= policy.depth
        ? [{ key: segments.slice(0, policy.depth).join('/'), limit: policy.limit, source: 'limit' }]
        : [];
    case 'hierarchical': {
      const out: NodeSpec[] = [];
      policy.levels.forEach((level, i) => {
        if (segments.length < i + 1) return;
        const key = segments.slice(0, i + 1).join('/');
        const override = level.overrides[key];
        if (override !== undefined) out.push({ key, limit: override, source: 'override' });
        else if (level.default !== undefined) out.push({ key, limit: level.default, source: 'default' });
      });
      return out;
    }
  }
}

export function describeNode(node: { policy: LimitPolicyConfig; key: string; limit: number; source: string }): string {
  return `policy "${node.policy.name}" subtree "${node.key || '(all)'}" (${formatSize(node.limit)}, ${node.source})`;
}
