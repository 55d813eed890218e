import { InvalidArgumentError } from '../errors.js';
import type { StorageManager } from '../storage/manager.js';

/** DoAction verbs (DESIGN.md §6), each listed by ListActions with a description. */
export const actionTypes = [
  {
    type: 'delete',
    description: 'Remove one flight everywhere. Body: {"path": "a/b"}. Result: {"deleted": true|false}.',
  },
  {
    type: 'delete-prefix',
    description:
      'Remove every flight under a path prefix (whole segments). Body: {"prefix": "a"}. Result: {"deleted": N}.',
  },
  { type: 'stats', description: 'Storage types, classes and uploads in progress as JSON. Body: empty.' },
] as const;

/** Runs an action and returns its result bodies. */
export function runAction(manager: StorageManager, type: string, body: Buffer): Buffer[] {
  switch (type) {
    case 'delete': {
      const { path } = parseBody(type, body, ['path']);
      return [json({ deleted: manager.delete([path]) })];
    }
    case 'delete-prefix': {
      const { prefix } = parseBody(type, body, ['prefix']);
      return [json({ deleted: manager.deletePrefix(prefix) })];
    }
    case 'stats':
      return [json(manager.stats())];
    default:
      throw new InvalidArgumentError(
        `unknown action "${type}"; available: ${actionTypes.map((a) => a.type).join(', ')}`,
      );
  }
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
