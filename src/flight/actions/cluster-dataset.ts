import { PermissionDeniedError, InvalidArgumentError } from '../../errors.js';
import { partitionOf, storedPath, type FlightPath } from '../../core/path.js';
import { beginHere, CLUSTER_DATASET_VERB, pinHere, type DatasetMessage } from '../dataset-homes.js';
import type { ActionVerb } from './registry.js';

/**
 * `cluster-dataset` (node to node, DESIGN §9): what a dataset's home and its partitions'
 * owners tell each other (flight/dataset-homes.ts): a partition put's generation, a
 * partition landed or lost, partitions to remove or pin. Refused from clients.
 */
export const clusterDatasetVerb: ActionVerb = {
  type: CLUSTER_DATASET_VERB,
  description:
    'Between cluster nodes: a partitioned dataset\'s home and its partitions\' owners keep each other informed. Body: {"op", ...}.',
  permission: 'admin',
  async *run(body, { manager, datasets, homes, cluster, log, forwarded }) {
    if (forwarded) throw new PermissionDeniedError(`action "${CLUSTER_DATASET_VERB}" is for cluster nodes only`);
    const m = JSON.parse(body.toString('utf8')) as DatasetMessage;
    const partition = (path: string): FlightPath => {
      if (!partitionOf(path)) throw new InvalidArgumentError(`"${path}" is not a partition of a dataset`);
      return storedPath(path);
    };
    switch (m.op) {
      case 'begin':
        yield {
          generation: beginHere(datasets, storedPath(m.dataset), m.index, m.count, Buffer.from(m.schema, 'base64')),
        };
        return;
      case 'landed': {
        const { dataset, generation, index, count, tag, node, records, bytes } = m;
        const at = datasets.generation(storedPath(dataset), generation, count);
        yield { visible: datasets.landed(at, index, { tag, node, records, bytes }) };
        return;
      }
      case 'lost':
        datasets.retired(partition(m.path), m.reason);
        yield {};
        return;
      case 'remove':
        yield { removed: m.paths.filter((p) => manager.delete(partition(p))).length };
        return;
      case 'report': {
        // Not awaited: the asker may still be starting (its reports are retried meanwhile).
        const to = cluster.peers().find((p) => p.name === m.to);
        if (to)
          void homes
            .report(to)
            .catch((err: unknown) =>
              log.warn(
                { member: to.name, err: (err as Error).message },
                'could not tell a dataset home of its partitions',
              ),
            );
        yield {};
        return;
      }
      case 'held':
        await homes.received(m.partitions);
        yield {};
        return;
      case 'pin':
        for (const p of m.paths) await pinHere(manager, partition(p), m.pinned);
        yield {};
        return;
      default:
        throw new InvalidArgumentError(`action "${CLUSTER_DATASET_VERB}": unknown op`);
    }
  },
};
