import type { ActionVerb } from './registry.js';

export const statsVerb: ActionVerb = {
  type: 'stats',
  description: 'Storage types, classes and uploads in progress as JSON. Body: empty.',
  permission: 'admin',
  async *run(_body, { manager }) {
    yield manager.stats();
  },
};
