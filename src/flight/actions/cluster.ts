import type { ActionVerb } from './registry.js';

/** One member as the `cluster` verb reports it. */
export interface MemberReport {
  name: string;
  location: string;
  /** As this node sees it: self, unknown (not probed yet), up or down. */
  state: string;
  /** What the member holds itself (asked of it; absent when it did not answer). */
  flights?: number;
  bytes?: number;
  error?: string;
}

/**
 * `cluster` (DESIGN §8, `tierflight admin cluster`): the members, their state as this node
 * sees it, and the flights and bytes each holds (each member asked for its own).
 */
export const clusterVerb: ActionVerb = {
  type: 'cluster',
  description:
    'Cluster members, their state and the flights each holds. Body: empty. Result: {"self", "members": [{"name", "location", "state", "flights", "bytes"}]}.',
  permission: 'admin',
  async *run(_body, { manager, cluster, forwarded }) {
    const own = () => {
      const types = Object.values(manager.stats().storageTypes);
      return {
        flights: types.reduce((n, t) => n + (t?.flights ?? 0), 0),
        bytes: types.reduce((n, t) => n + (t?.used ?? 0), 0),
      };
    };
    // A node outside any cluster has no members (SOLO_NODE).
    if (cluster.members().length === 0) {
      yield { self: null, members: [] };
      return;
    }
    const members: MemberReport[] = await Promise.all(
      cluster.members().map(async (m): Promise<MemberReport> => {
        if (m.state === 'self') return { ...m, ...own() };
        // A member asked by another node answers for itself only; one that is down is not asked.
        if (!forwarded || m.state === 'down') return { ...m };
        try {
          const [answer] = await cluster.action(m, 'cluster', Buffer.alloc(0), forwarded);
          const report = JSON.parse(answer?.toString() ?? '{}') as { members?: MemberReport[] };
          const itself = report.members?.find((r) => r.name === m.name);
          return { ...m, ...(itself ? { flights: itself.flights, bytes: itself.bytes } : {}) };
        } catch (err) {
          return { ...m, error: (err as Error).message };
        }
      }),
    );
    yield { self: cluster.self, members };
  },
};

/** `cluster-resync` (node to node): another member saw this one come back; check flights against placement and the store. */
export const clusterResyncVerb: ActionVerb = {
  type: 'cluster-resync',
  description: "Between cluster nodes: check this node's flights against placement and the durable store. Body: empty.",
  permission: 'admin',
  async *run(_body, { cluster }) {
    cluster.resync();
    yield { resync: cluster.members().length > 0 };
  },
};
