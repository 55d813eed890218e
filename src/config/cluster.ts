import type { ConfigIssue, PathKey } from './issue.js';
import type { Config } from './schema.js';

type IssueAt = (p: PathKey[], m: string, k?: string) => ConfigIssue;

/**
 * The checks on `cluster` (DESIGN §8) that need the whole file: member names and locations
 * are unique, `self` is one of them, several nodes share a reservation store (Redis, not
 * each its own memory), and no class asks for more replicas than there are members.
 */
export function clusterIssues(config: Config, issueAt: IssueAt): ConfigIssue[] {
  const cluster = config.cluster;
  if (!cluster) return [];
  const issues: ConfigIssue[] = [];
  const members = cluster.members;
  if (members) {
    const names = new Set<string>();
    const locations = new Set<string>();
    members.forEach((m, i) => {
      if (names.has(m.name)) issues.push(issueAt(['cluster', 'members', i, 'name'], `duplicate member "${m.name}"`));
      if (locations.has(m.location))
        issues.push(issueAt(['cluster', 'members', i, 'location'], `duplicate member location "${m.location}"`));
      names.add(m.name);
      locations.add(m.location);
    });
    if (!names.has(cluster.self))
      issues.push(issueAt(['cluster', 'self'], `self "${cluster.self}" is not one of cluster.members`));
    config.storageClasses.forEach((cls, i) => {
      if (cls.replicas > members.length)
        issues.push(
          issueAt(
            ['storageClasses', i, 'replicas'],
            `replicas ${cls.replicas} is more than the cluster's ${members.length} members`,
          ),
        );
    });
  }
  const several = cluster.discover !== undefined || (members?.length ?? 0) > 1;
  if (several && config.reservations.store.type === 'memory') {
    issues.push(
      issueAt(
        ['cluster'],
        'a cluster of several nodes needs a shared reservation store: set reservations.store to { type: redis, url: … }',
      ),
    );
  }
  return issues;
}
