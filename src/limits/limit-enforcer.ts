import { ResourceExhaustedError, retryHere, RETRY_NEVER, type RetryHint } from '../errors.js';

/** How long a put refused at a limit that may make room (evict, or other puts pending) is told to wait. */
const LIMIT_RETRY_MS = 1000;
import { formatSize } from '../config/units.js';
import type { LimitPolicyConfig } from '../config/schema.js';
import { describeNode, LimitTree, type LimitNode } from './limit-tree.js';

/** A flight's charges: the nodes its bytes count in, per scope. */
interface Charged {
  bytes: number;
  total: LimitNode[];
  ephemeral: LimitNode[] | undefined;
}

/** A put in progress: the nodes its bytes are pending in. */
interface PendingPut {
  nodes: LimitNode[];
  bytes: number;
}

/**
 * What limit enforcement needs to know of a flight: its class, its bytes, and when it was
 * last read (least recently read goes first). The storage manager's versions are these.
 */
export interface LimitedFlight {
  readonly path: string;
  readonly totalBytes: number;
  readonly lastAccess: number;
  readonly cls: { readonly config: { readonly name: string } };
}

/** What limit enforcement needs from the storage manager. */
export interface LimitHost<F extends LimitedFlight> {
  /** Frees a flight's ephemeral copy (scope: ephemeral) or the whole flight (scope: total). */
  evictForLimit(version: F, policy: LimitPolicyConfig): boolean;
  rejected(policy: LimitPolicyConfig): void;
}

/**
 * Limit policies (DESIGN.md §4) applied to the storage manager's flights. A flight's bytes
 * (its Arrow IPC bytes, the same in every tier) count in every node of every policy that
 * governs it: `scope: total` while it is visible, `scope: ephemeral` while it has a tier
 * copy. Puts count as pending as their bytes arrive, so concurrent puts cannot jointly overshoot;
 * at a limit, `onLimit: evict` frees least-recently-used flights inside that node's
 * subtree and `reject` fails the put with RESOURCE_EXHAUSTED naming the policy and subtree.
 */
export class LimitEnforcer<F extends LimitedFlight = LimitedFlight> {
  private policyTree: LimitTree;
  private readonly charged = new Map<F, Charged>();
  private readonly pendingPuts = new Map<object, PendingPut>();
  /**
   * The flights counted in each node, least recently read first (`touch` moves a flight to
   * the end): an eviction takes victims from the front instead of sorting every flight.
   */
  private readonly members = new Map<LimitNode, Set<F>>();

  constructor(
    policies: readonly LimitPolicyConfig[],
    private readonly host: LimitHost<F>,
  ) {
    this.policyTree = new LimitTree(policies);
  }

  get tree(): LimitTree {
    return this.policyTree;
  }

  /**
   * A reload's policies, in force from now on: the same enforcer, emptied. The caller
   * counts every flight again (`add`, least recently read first) and calls `enforceAll`;
   * puts in progress are no longer counted (their `settle` finds nothing).
   */
  replacePolicies(policies: readonly LimitPolicyConfig[]): void {
    this.policyTree = new LimitTree(policies);
    this.charged.clear();
    this.pendingPuts.clear();
    this.members.clear();
  }

  get active(): boolean {
    return this.tree.policies.length > 0;
  }

  /**
   * Admits `bytes` more for a put in progress (`owner`), evicting or rejecting at a limit.
   * `replacing` is the version the put will replace: its bytes leave when the put lands.
   */
  admit(
    owner: object,
    className: string,
    path: string,
    segments: readonly string[],
    bytes: number,
    replacing?: F,
  ): void {
    if (!this.active) return;
    let r = this.pendingPuts.get(owner);
    if (!r) {
      r = { nodes: this.tree.nodesFor(className, segments), bytes: 0 };
      this.pendingPuts.set(owner, r);
    }
    const credit = replacing ? this.charged.get(replacing) : undefined;
    for (const node of r.nodes) {
      const total = r.bytes + bytes;
      if (total > node.limit) this.reject(node, path, `the flight (${formatSize(total)}) is larger than the limit`);
      const back = credit && (credit.total.includes(node) || credit.ephemeral?.includes(node)) ? credit.bytes : 0;
      const over = (): number => node.used + node.pending + bytes - back - node.limit;
      if (over() > 0 && node.policy.onLimit === 'evict') this.evictIn(node, over, replacing);
      if (over() > 0) {
        this.reject(
          node,
          path,
          `${formatSize(node.used)} used and ${formatSize(node.pending)} being written, ${formatSize(bytes)} more do not fit`,
          // Puts in progress may fail and readers let go of what evict could not take;
          // under `reject`, with nothing in progress, only deletions and expiries make room.
          node.policy.onLimit === 'evict' || node.pending > 0 ? retryHere(LIMIT_RETRY_MS) : RETRY_NEVER,
        );
      }
    }
    for (const node of r.nodes) node.pending += bytes;
    r.bytes += bytes;
  }

  /** Refuses up front a put whose declared size is larger than a limit that governs it. */
  checkDeclaredSize(className: string, path: string, segments: readonly string[], bytes: number): void {
    if (!this.active) return;
    for (const node of this.tree.nodesFor(className, segments)) {
      if (bytes > node.limit)
        this.reject(node, path, `the declared size (${formatSize(bytes)}) is larger than the limit`);
    }
  }

  /** Ends a put's reservation (it landed, and its flight was charged, or it failed). */
  settle(owner: object): void {
    const r = this.pendingPuts.get(owner);
    if (!r) return;
    this.pendingPuts.delete(owner);
    for (const node of r.nodes) {
      node.pending -= r.bytes;
      this.tree.prune(node);
    }
  }

  /** Counts a newly visible flight (and its tier copy, if it has one). */
  add(version: F, segments: readonly string[], hasTierCopy: boolean): void {
    if (!this.active) return;
    const name = version.cls.config.name;
    const c: Charged = {
      bytes: version.totalBytes,
      total: this.tree.nodesFor(name, segments, 'total'),
      ephemeral: hasTierCopy ? this.tree.nodesFor(name, segments, 'ephemeral') : undefined,
    };
    for (const node of [...c.total, ...(c.ephemeral ?? [])]) node.used += c.bytes;
    this.charged.set(version, c);
    this.join(c.total, version);
    if (c.ephemeral) this.join(c.ephemeral, version);
  }

  /** The flight was read: it becomes the most recently used in every node counting it. */
  touch(version: F): void {
    const c = this.charged.get(version);
    if (!c) return;
    for (const node of [...c.total, ...(c.ephemeral ?? [])]) {
      const set = this.members.get(node);
      if (set?.delete(version)) set.add(version);
    }
  }

  /** The flight is gone (deleted, replaced, expired, evicted). */
  remove(version: F): void {
    const c = this.charged.get(version);
    if (!c) return;
    this.charged.delete(version);
    this.uncharge(c.total, c.bytes, version);
    if (c.ephemeral) this.uncharge(c.ephemeral, c.bytes, version);
  }

  /** The flight lost its tier copy but stays visible (durable only). */
  dropTierCopy(version: F): void {
    const c = this.charged.get(version);
    if (!c?.ephemeral) return;
    this.uncharge(c.ephemeral, c.bytes, version);
    c.ephemeral = undefined;
  }

  /**
   * Admits a restore into a tier (ephemeral scope), evicting at `evict` limits; false when a
   * `reject` limit is full (the flight is then served from its durable store instead).
   */
  admitTierCopy(version: F, segments: readonly string[]): boolean {
    const c = this.charged.get(version);
    if (!c || c.ephemeral) return true;
    const nodes = this.tree.nodesFor(version.cls.config.name, segments, 'ephemeral');
    for (const node of nodes) {
      const over = (): number => node.used + node.pending + c.bytes - node.limit;
      if (over() > 0 && node.policy.onLimit === 'evict') this.evictIn(node, over, version);
      if (over() > 0) return false;
    }
    for (const node of nodes) node.used += c.bytes;
    c.ephemeral = nodes;
    this.join(nodes, version);
    return true;
  }

  /** After a reload: brings every node of an `evict` policy back under its limit. */
  enforceAll(): void {
    for (const node of [...this.tree.all()]) {
      if (node.policy.onLimit === 'evict' && node.used > node.limit) this.evictIn(node, () => node.used - node.limit);
    }
  }

  /** For tests: every node's used bytes equal the sum of its flights, and none is over its limit. */
  check(): void {
    const expected = new Map<LimitNode, number>();
    for (const c of this.charged.values()) {
      for (const node of [...c.total, ...(c.ephemeral ?? [])]) expected.set(node, (expected.get(node) ?? 0) + c.bytes);
    }
    for (const node of this.tree.all()) {
      const want = expected.get(node) ?? 0;
      if (node.used !== want) throw new Error(`${describeNode(node)}: used ${node.used} != ${want}`);
      if (node.used > node.limit) throw new Error(`${describeNode(node)}: used ${node.used} > limit ${node.limit}`);
    }
  }

  private uncharge(nodes: LimitNode[], bytes: number, version: F): void {
    for (const node of nodes) {
      node.used -= bytes;
      const set = this.members.get(node);
      set?.delete(version);
      if (set?.size === 0) this.members.delete(node);
      this.tree.prune(node);
    }
  }

  private join(nodes: readonly LimitNode[], version: F): void {
    for (const node of nodes) {
      let set = this.members.get(node);
      if (!set) this.members.set(node, (set = new Set()));
      set.add(version);
    }
  }

  /**
   * Evicts least-recently-used flights counted in `node` until it is no longer over: from
   * the front of the node's members, so each victim costs O(1) however many flights there
   * are. (An eviction removes its flight from the set while it is iterated, which a Set
   * allows.)
   */
  private evictIn(node: LimitNode, over: () => number, keep?: F): void {
    for (const v of this.members.get(node) ?? []) {
      if (over() <= 0) return;
      if (v === keep || v.path === keep?.path) continue;
      this.host.evictForLimit(v, node.policy);
    }
  }

  /** Refuses the write; a flight larger than the limit never fits (RETRY_NEVER unless told otherwise). */
  private reject(node: LimitNode, path: string, why: string, retry: RetryHint = RETRY_NEVER): never {
    this.host.rejected(node.policy);
    throw new ResourceExhaustedError(
      `flight "${path}": limit ${describeNode(node)} reached: ${why} (onLimit ${node.policy.onLimit})`,
      retry,
    );
  }
}
