import { flightPath } from '../../core/path.js';
import type { ActionVerb } from './registry.js';
import { joinJson, parseBody } from './registry.js';

export const deleteVerb: ActionVerb = {
  type: 'delete',
  description: 'Remove one flight everywhere. Body: {"path": "a/b"}. Result: {"deleted": true|false}.',
  permission: 'write',
  target: (body) => parseBody('delete', body, ['path']).path,
  async *run(body, { manager, datasets, log, peer, user }) {
    const path = flightPath(parseBody('delete', body, ['path']).path);
    await manager.locate(path); // a flight its store's listing has not reached yet
    // A dataset goes with its partitions.
    const dataset = datasets.drop(path);
    const deleted = manager.delete(path) || dataset;
    log.info({ action: 'delete', path, deleted, peer, user }, 'delete');
    yield { deleted };
  },
  clusterWide: joinJson((results) => ({ deleted: (results as { deleted: boolean }[]).some((r) => r.deleted) })),
};
