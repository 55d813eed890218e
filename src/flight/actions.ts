import { InvalidArgumentError } from '../errors.js';
import { normalizePrefix } from '../routing/path.js';
import type { StorageManager } from '../storage/manager.js';
import type { Logger } from '../util/log.js';

/** Who asked, for the log of destructive actions. */
export interface ActionContext {
  log: Logger;
  /** The client's address as grpc-js reports it. */
  peer: string;
}

/** DoAction verbs (DESIGN.md §6), each listed by ListActions with a description. */
export const actionTypes = [
  {
    type: 'delete',
    description: 'Remove one flight everywhere. Body: {"path": "a/b"}. Result: {"deleted": true|false}.',
  },
  {
    type: 'delete-prefix',
    description:
      'Remove every flight under a path prefix (whole segments), durable copies included. Body: {"prefix": "a"}; ' +
      'an empty prefix (every flight) needs {"prefix": "", "all": true}. Result: {"deleted": N}.',
  },
  { type: 'stats', description: 'Storage types, classes and uploads in progress as JSON. Body: empty.' },
] as const;

/** Runs an action and returns its result bodies. Destructive ones are logged at info with who asked. */
export function runAction(manager: StorageManager, type: string, body: Buffer, context: ActionContext): Buffer[] {
  switch (type) {
    case 'delete': {
      const { path } = parseBody(type, body, ['path']);
      const deleted = manager.delete([path]);
      context.log.info({ action: type, path, deleted, peer: context.peer }, 'delete');
      return [json({ deleted })];
    }
    case 'delete-prefix': {
      const { prefix } = parseBody(type, body, ['prefix']);
      const norm = normalizePrefix(prefix);
      if (norm.ok && norm.value === '' && !isTrue(body, 'all')) {
        throw new InvalidArgumentError(
          'action "delete-prefix": an empty prefix deletes every flight, durable copies included; ' +
            'send {"prefix": "", "all": true} to mean that',
        );
      }
      const deleted = manager.deletePrefix(prefix);
      context.log.info({ action: type, prefix, deleted, peer: context.peer }, 'delete-prefix');
      return [json({ deleted })];
    }
    case 'stats':
      return [json(manager.stats())];
    default:
      throw new InvalidArgumentError(
        `unknown action "${type}"; available: ${actionTypes.map((a) => a.type).join(', ')}`,
      );
  }
}

/** Whether the body's JSON has `key: true` (the body already parsed as JSON once). */
function isTrue(body: Buffer, key: string): boolean {
  return (JSON.parse(body.toString('utf8')) as Record<string, unknown>)[key] === true;
}

function parseBody<K extends string>(action: string, body: Buffer, keys: readonly K[]): Record<K, string> {
  let doc: unknown;
  try {
    doc = JSON.parse(body.toString('utf8'));
  } catch {
    throw new InvalidArgumentError(`action "${action}": body must be JSON such as {"${keys[0]}": "..."}`);
  }
  const out = {} as Record<K, string>;
  for (const key of keys) {
    const value = (doc as Record<string, unknown> | null)?.[key];
    if (typeof value !== 'string') throw new InvalidArgumentError(`action "${action}": body needs a "${key}" string`);
    out[key] = value;
  }
  return out;
}

function json(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value), 'utf8');
}
