import { deletePrefixVerb } from './delete-prefix.js';
import { deleteVerb } from './delete.js';
import { ActionRegistry } from './registry.js';
import { releaseVerb, reserveVerb } from './reserve.js';
import { pinVerb, unpinVerb } from './pin.js';
import { backfillStatusVerb, backfillVerb, prefetchVerb } from './jobs.js';
import { statsVerb } from './stats.js';
import { clusterResyncVerb, clusterVerb } from './cluster.js';
import { clusterDatasetVerb } from './cluster-dataset.js';
import { cancelFlightInfoVerb, renewFlightEndpointVerb } from './standard.js';

export { ActionRegistry, type ActionContext, type ActionVerb, type Permission } from './registry.js';

/** The registry of DoAction verbs a server offers (DESIGN §6); later issues add theirs here. */
export function builtinActions(): ActionRegistry {
  return new ActionRegistry([
    deleteVerb,
    deletePrefixVerb,
    statsVerb,
    reserveVerb,
    releaseVerb,
    pinVerb,
    unpinVerb,
    backfillVerb,
    backfillStatusVerb,
    prefetchVerb,
    clusterVerb,
    clusterResyncVerb,
    clusterDatasetVerb,
    renewFlightEndpointVerb,
    cancelFlightInfoVerb,
  ]);
}
