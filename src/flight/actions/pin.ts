import { flightPath } from '../../core/path.js';
import type { ActionVerb } from './registry.js';
import { joinJson, parseBody } from './registry.js';

export const pinVerb: ActionVerb = {
  type: 'pin',
  description:
    'Pin a flight: never evicted or moved down (it still counts against limits; a put that needs its room is refused). ' +
    'Body: {"path": "a/b"}. Result: {"pinned": true}.',
  permission: 'admin',
  target: (body) => parseBody('pin', body, ['path']).path,
  async *run(body, { manager, datasets, log, peer, user }) {
    const path = flightPath(parseBody('pin', body, ['path']).path);
    // A dataset: its partitions, and those of the generations after.
    if (datasets.has(path)) await datasets.pin(path, true);
    else {
      await manager.materialize(path);
      manager.pin(path);
    }
    log.info({ action: 'pin', path, peer, user }, 'pin');
    yield { pinned: true };
  },
  // Pinned wherever the flight is held; NOT_FOUND only when no member has it.
  clusterWide: joinJson(() => ({ pinned: true })),
};

export const unpinVerb: ActionVerb = {
  type: 'unpin',
  description:
    'Unpin a flight (idempotent). Body: {"path": "a/b"}. Result: {"unpinned": true|false} (false: it was not pinned).',
  permission: 'admin',
  target: (body) => parseBody('unpin', body, ['path']).path,
  async *run(body, { manager, datasets, log, peer, user }) {
    const path = flightPath(parseBody('unpin', body, ['path']).path);
    const unpinned = datasets.has(path) ? await datasets.pin(path, false) : manager.unpin(path);
    log.info({ action: 'unpin', path, unpinned, peer, user }, 'unpin');
    yield { unpinned };
  },
  clusterWide: joinJson((results) => ({
    unpinned: (results as { unpinned: boolean }[]).some((r) => r.unpinned),
  })),
};
