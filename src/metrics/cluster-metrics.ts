import { Counter, Gauge, type Registry } from 'prom-client';

/** What the cluster metrics read at scrape time (cluster/membership.ts, seen from below). */
export interface MemberStates {
  all(): { name: string; state: string }[];
}

const STATES = ['self', 'unknown', 'up', 'down'] as const;

/** Cluster metrics (DESIGN §8): the calls this node made to the others by method and outcome. */
export class ClusterMetrics {
  private readonly calls: Counter<'method' | 'outcome'>;

  constructor(registry: Registry) {
    this.calls = new Counter({
      name: 'tierflight_cluster_calls_total',
      help: 'Calls this node made to other members (forwarded puts, owners asked, lists merged, actions fanned out, probes), by method and outcome (OK or the status)',
      labelNames: ['method', 'outcome'],
      registers: [registry],
    });
  }

  readonly call = (method: string, outcome: string): void => {
    this.calls.inc({ method, outcome });
  };
}

/** A node outside any cluster: no members. */
export const NO_MEMBERS: MemberStates = { all: () => [] };

/** Members by the state this node sees them in, and each member's liveness, read at scrape time. */
export function registerClusterGauges(registry: Registry, states: MemberStates): void {
  const members = () => states.all();
  new Gauge({
    name: 'tierflight_cluster_members',
    help: 'Cluster members by the state this node sees them in (self, unknown, up, down); all 0 without a cluster',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      this.reset();
      for (const state of STATES) this.set({ state }, members().filter((m) => m.state === state).length);
    },
  });
  new Gauge({
    name: 'tierflight_cluster_member_up',
    help: 'Whether this node sees each cluster member answer (1) or not (0: down, or not probed yet)',
    labelNames: ['member'],
    registers: [registry],
    collect() {
      this.reset();
      for (const m of members()) this.set({ member: m.name }, m.state === 'up' || m.state === 'self' ? 1 : 0);
    },
  });
}
