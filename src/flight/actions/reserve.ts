import { flightPath } from '../../core/path.js';
import { InvalidArgumentError } from '../../errors.js';
import type { ActionVerb } from './registry.js';
import { parseBody } from './registry.js';

export const reserveVerb: ActionVerb = {
  type: 'reserve',
  description:
    'Reserve a missing flight to compute it while others wait. Body: {"path": "a/b", "owner": "me", ' +
    '"heartbeatSeconds": 30}. Result: {"status": "acquired"|"held", "owner", "expiresAt"}; call again to extend.',
  permission: 'write',
  target: (body) => parseBody('reserve', body, ['path', 'owner']).path,
  atOwner: true,
  async *run(body, { manager, reservations, identity }) {
    const doc = parseBody('reserve', body, ['path', 'owner']);
    const heartbeat = doc.heartbeatSeconds;
    if (typeof heartbeat !== 'number') {
      throw new InvalidArgumentError('action "reserve": body needs "heartbeatSeconds", a number of seconds');
    }
    // Reservable exactly where a put would be accepted.
    const path = flightPath(doc.path);
    manager.route(path);
    // Counted against the user's reservations.maxPerUser (authenticated users only).
    yield await reservations.reserve(path, doc.owner, heartbeat, identity.anonymous ? undefined : identity.user);
  },
};

export const releaseVerb: ActionVerb = {
  type: 'release',
  description:
    'Release your reservation of a path (idempotent). Body: {"path": "a/b", "owner": "me"}. ' +
    'Result: {"released": true|false} (false: another owner holds it).',
  permission: 'write',
  target: (body) => parseBody('release', body, ['path', 'owner']).path,
  atOwner: true,
  async *run(body, { manager, reservations }) {
    const doc = parseBody('release', body, ['path', 'owner']);
    const path = flightPath(doc.path);
    manager.route(path);
    yield { released: await reservations.release(path, doc.owner) };
  },
};
