import type { ActionVerb } from './registry.js';

export const statsVerb: ActionVerb = {
  type: 'stats',
  description:
    'Storage types, classes, limits, uploads, reservations and partitioned datasets (those this node keeps) as JSON. Body: empty.',
  permission: 'admin',
  async *run(_body, { manager, reservations, datasets }) {
    const live = await reservations.refreshCount();
    yield {
      ...manager.stats(),
      reservations: { store: reservations.store.type, live, waiters: reservations.waiterCount },
      datasets: datasets.counts(),
    };
  },
};
