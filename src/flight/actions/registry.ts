import type { Denial } from '../../auth/denials.js';
import { InvalidArgumentError, PermissionDeniedError } from '../../errors.js';
import { normalizePrefix } from '../../core/path.js';
import type { Identity } from '../../auth/authenticator.js';
import type { Reservations } from '../../coordination/index.js';
import type { Datasets } from '../../datasets/datasets.js';
import type { JobRunner } from '../../jobs/runner.js';
import type { StorageManager } from '../../storage/manager.js';
import type { Logger } from '../../core/log.js';
import type { ClusterPort } from '../cluster-port.js';
import type { DatasetHomes } from '../dataset-homes.js';

/** The access a verb needs on the paths it touches (DESIGN §7); enforced once auth exists. */
export type Permission = 'read' | 'write' | 'admin';

/** What a verb gets besides its body. */
export interface ActionContext {
  manager: StorageManager;
  reservations: Reservations;
  /** Partitioned datasets (DESIGN §9): deleted with their partitions. */
  datasets: Datasets;
  /** Where each dataset's generations are kept in a cluster (what `cluster-dataset` serves). */
  homes: DatasetHomes;
  /** Backfill and prefetch jobs (DESIGN §6). */
  jobs: JobRunner;
  log: Logger;
  /** The client's address as grpc-js reports it, and who it is: the log of destructive verbs names both. */
  peer: string;
  user: string;
  /** Who calls: the registry checks the verb's permission on its target before running it. */
  identity: Identity;
  /** Counts a refused permission (metrics). */
  denied?: (d: Denial) => void;
  /** The other nodes (DESIGN §8); outside a cluster, SOLO_NODE (no members, no peers). */
  cluster: ClusterPort;
  /** Headers for calls to other members on this call's behalf; undefined for a call from another node. */
  forwarded?: Record<string, string>;
}

/**
 * A DoAction verb (DESIGN §6): listed by ListActions with its description, and run as an
 * async iterable of results, each sent as one JSON `Result` as it comes, so a long verb
 * streams its progress. A Buffer result is sent as it is (the protocol's standard actions
 * answer protobuf).
 */
export interface ActionVerb {
  readonly type: string;
  readonly description: string;
  readonly permission: Permission;
  /** The path or prefix the permission is needed on (from the body); the whole namespace ("") if absent. */
  target?(body: Buffer): string;
  run(body: Buffer, context: ActionContext): AsyncIterable<unknown>;
  /**
   * In a cluster the verb runs on every live member (DESIGN §8) and this joins their first
   * results into the caller's one (this node's first; a member that failed is left out;
   * `joinJson` for verbs that answer JSON). Outside a cluster it joins this node's alone.
   */
  clusterWide?(results: Buffer[]): Buffer;
  /**
   * NOT_FOUND here asks the target path's other owners, the first answer winning: the
   * version it names may live on them (RenewFlightEndpoint of another node's ticket).
   */
  readonly askOwnersOnNotFound?: boolean;
  /**
   * In a cluster whose reservation store is this node's memory (`--workers`), the verb runs
   * on the primary owner of its target path, where the path's puts and waits happen too.
   */
  readonly atOwner?: boolean;
}

export class ActionRegistry {
  private readonly verbs = new Map<string, ActionVerb>();

  constructor(verbs: readonly ActionVerb[] = []) {
    for (const verb of verbs) this.register(verb);
  }

  register(verb: ActionVerb): void {
    if (this.verbs.has(verb.type)) throw new Error(`action "${verb.type}" is registered twice`);
    this.verbs.set(verb.type, verb);
  }

  get(type: string): ActionVerb | undefined {
    return this.verbs.get(type);
  }

  list(): ActionVerb[] {
    return [...this.verbs.values()];
  }

  /** The verb's results as JSON bodies; INVALID_ARGUMENT for a verb nobody registered. */
  async *run(type: string, body: Buffer, context: ActionContext): AsyncIterable<Buffer> {
    const verb = this.verbs.get(type);
    if (!verb) {
      throw new InvalidArgumentError(`unknown action "${type}"; available: ${[...this.verbs.keys()].join(', ')}`);
    }
    const target = normalizePrefix(verb.target?.(body) ?? '');
    if (!target.ok) throw new InvalidArgumentError(`action "${type}": ${target.reason}`);
    if (!context.identity.can(target.value, verb.permission)) {
      context.denied?.({
        user: context.identity.user,
        access: verb.permission,
        path: target.value || '/',
        peer: context.peer,
      });
      throw new PermissionDeniedError(
        `user "${context.identity.user}" needs ${verb.permission} access to "${target.value || '/'}" for action "${type}"`,
      );
    }
    for await (const result of verb.run(body, context))
      yield Buffer.isBuffer(result) ? result : Buffer.from(JSON.stringify(result), 'utf8');
  }
}

/** The JSON object a verb's body must be, with the string fields it needs. */
export function parseBody<K extends string>(
  action: string,
  body: Buffer,
  keys: readonly K[],
): Record<K, string> & Record<string, unknown> {
  let doc: unknown;
  try {
    doc = JSON.parse(body.toString('utf8'));
  } catch {
    throw new InvalidArgumentError(`action "${action}": body must be JSON such as {"${keys[0]}": "..."}`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw new InvalidArgumentError(`action "${action}": body must be a JSON object such as {"${keys[0]}": "..."}`);
  }
  const out = doc as Record<string, unknown>;
  for (const key of keys) {
    if (typeof out[key] !== 'string')
      throw new InvalidArgumentError(`action "${action}": body needs a "${key}" string`);
  }
  return out as Record<K, string> & Record<string, unknown>;
}

/** A `clusterWide` join for verbs whose results are JSON documents. */
export function joinJson(join: (results: unknown[]) => unknown): (results: Buffer[]) => Buffer {
  return (results) =>
    Buffer.from(JSON.stringify(join(results.map((b) => JSON.parse(b.toString('utf8')) as unknown))), 'utf8');
}
