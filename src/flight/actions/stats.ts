import type { ActionVerb } from './registry.js';

export const statsVerb: ActionVerb = {
  type: 'stats',
  description: 'Storage types, classes, limits, uploads and reservations as JSON. Body: empty.',
  permission: 'admin',
  async *run(_body, { manager, reservations }) {
    const live = await reservations.refreshCount();
    yield {
      ...manager.stats(),
      reservations: { store: reservations.store.type, live, waiters: reservations.waiterCount },
    };
  },
};
