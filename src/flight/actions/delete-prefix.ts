import { InvalidArgumentError } from '../../errors.js';
import { normalizePrefix } from '../../core/path.js';
import type { ActionVerb } from './registry.js';
import { joinJson, parseBody } from './registry.js';

export const deletePrefixVerb: ActionVerb = {
  type: 'delete-prefix',
  description:
    'Remove every flight under a path prefix (whole segments), durable copies included. Body: {"prefix": "a"}; ' +
    'an empty prefix (every flight) needs {"prefix": "", "all": true}. Result: {"deleted": N}.',
  permission: 'admin',
  target: (body) => parseBody('delete-prefix', body, ['prefix']).prefix,
  async *run(body, { manager, datasets, log, peer, user }) {
    const doc = parseBody('delete-prefix', body, ['prefix']);
    const { prefix } = doc;
    const norm = normalizePrefix(prefix);
    if (norm.ok && norm.value === '' && doc.all !== true) {
      throw new InvalidArgumentError(
        'action "delete-prefix": an empty prefix deletes every flight, durable copies included; ' +
          'send {"prefix": "", "all": true} to mean that',
      );
    }
    await manager.findUnder(prefix); // flights a store's listing has not reached yet
    // Datasets count once each (their partitions go with them, here and on other members;
    // partitions of datasets whose home is another member go uncounted), then the flights.
    const datasetsDeleted = norm.ok ? datasets.dropUnder(norm.value) : 0;
    if (norm.ok) for (const p of manager.partitionsUnder(norm.value)) manager.delete(p.path);
    const deleted = manager.deletePrefix(prefix) + datasetsDeleted;
    log.info({ action: 'delete-prefix', prefix, deleted, peer, user }, 'delete-prefix');
    yield { deleted };
  },
  clusterWide: joinJson((results) => ({
    deleted: (results as { deleted: number }[]).reduce((n, r) => n + r.deleted, 0),
  })),
};
