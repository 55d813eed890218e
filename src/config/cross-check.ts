import path from 'node:path';
import { normalizePrefix } from '../core/path.js';
import { clusterIssues } from './cluster.js';
import { formatKeyPath, type ConfigIssue, type PathKey } from './issue.js';
import type { KnownNames } from './partial.js';
import type { Config } from './schema.js';
import { securityIssues } from './security.js';

/** Checks that need the whole file: names, references, overlaps. */
export function crossCheck(
  config: Config,
  issueAt: (p: PathKey[], m: string, k?: string) => ConfigIssue,
  /** The config file's folder (relative paths resolve against it), and whether to check the files it names. */
  where: { base: string; files: boolean },
  known: KnownNames = { types: new Set(), stores: new Set(), classes: new Set() },
): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const storeIds = new Set<string>();
  config.durableStores.forEach((store, i) => {
    if (storeIds.has(store.id))
      issues.push(issueAt(['durableStores', i, 'id'], `duplicate durable store id "${store.id}"`));
    storeIds.add(store.id);
  });

  const classNames = new Set<string>();
  const prefixes = new Map<string, string>();
  config.storageClasses.forEach((cls, i) => {
    const at = (...rest: PathKey[]): PathKey[] => ['storageClasses', i, ...rest];
    if (classNames.has(cls.name)) issues.push(issueAt(at('name'), `duplicate class name "${cls.name}"`));
    classNames.add(cls.name);
    const prefix = normalizePrefix(cls.prefix);
    if (!prefix.ok) {
      issues.push(issueAt(at('prefix'), prefix.reason));
    } else {
      const other = prefixes.get(prefix.value);
      if (other !== undefined) {
        issues.push(issueAt(at('prefix'), `prefix "${prefix.value}" is already used by class "${other}"`));
      }
      prefixes.set(prefix.value, cls.name);
    }
    if (cls.durability !== 'none' && cls.durableStore === undefined) {
      issues.push(issueAt(at('durability'), `durability "${cls.durability}" needs a durableStore`));
    }
    if (cls.durableStore !== undefined && !storeIds.has(cls.durableStore) && !known.stores.has(cls.durableStore)) {
      issues.push(issueAt(at('durableStore'), `no durable store has id "${cls.durableStore}"`));
    }
    const seen = new Set<string>();
    cls.tiers.forEach((tier, t) => {
      if (config.storageTypes[tier.storage] === undefined && !known.types.has(tier.storage)) {
        issues.push(
          issueAt(at('tiers', t, 'storage'), `storage type "${tier.storage}" is not defined in storageTypes`),
        );
      }
      if (seen.has(tier.storage)) {
        issues.push(issueAt(at('tiers', t, 'storage'), `storage type "${tier.storage}" appears twice in this class`));
      }
      seen.add(tier.storage);
    });
    const lastIndex = cls.tiers.length - 1;
    const last = cls.tiers[lastIndex];
    if (last !== undefined) {
      if (last.uploadSpill === 'spill') {
        issues.push(
          issueAt(at('tiers', lastIndex, 'uploadSpill'), 'the last tier cannot spill: there is no next tier'),
        );
      }
      if (last.evictionSpill) {
        issues.push(
          issueAt(at('tiers', lastIndex, 'evictionSpill'), 'the last tier cannot spill: there is no next tier'),
        );
      }
      if (last.moveAfter !== undefined) {
        issues.push(
          issueAt(at('tiers', lastIndex, 'moveAfter'), 'the last tier cannot move flights: there is no next tier'),
        );
      }
    }
    if (cls.tiers[0]?.promoteAfter !== undefined) {
      issues.push(issueAt(at('tiers', 0, 'promoteAfter'), 'the first tier cannot promote: there is no tier above it'));
    }
  });

  issues.push(...securityIssues(config, issueAt, { ...where, serverBroken: known.serverBroken === true }));
  issues.push(...clusterIssues(config, issueAt));

  const policyNames = new Set<string>();
  config.limitPolicies.forEach((policy, i) => {
    if (policyNames.has(policy.name))
      issues.push(issueAt(['limitPolicies', i, 'name'], `duplicate policy name "${policy.name}"`));
    policyNames.add(policy.name);
    policy.classes.forEach((name, c) => {
      if (!classNames.has(name) && !known.classes.has(name))
        issues.push(issueAt(['limitPolicies', i, 'classes', c], `no storage class is named "${name}"`));
    });
    if (policy.type === 'hierarchical') {
      policy.levels.forEach((level, l) => {
        for (const key of Object.keys(level.overrides)) {
          const depth = key.split('/').length;
          if (depth !== l + 1 || key.split('/').some((s) => s === '')) {
            issues.push(
              issueAt(
                ['limitPolicies', i, 'levels', l, 'overrides'],
                `override "${key}" must name ${l + 1} path segment(s) at level ${l + 1}`,
                key,
              ),
            );
          }
        }
      });
    }
  });

  const dirs: { key: PathKey[]; dir: string }[] = [];
  for (const name of ['disk_mapped', 'disk'] as const) {
    const t = config.storageTypes[name];
    if (t) dirs.push({ key: ['storageTypes', name, 'path'], dir: path.resolve(t.path) });
  }
  config.durableStores.forEach((s, i) => {
    if (s.type === 'filesystem') dirs.push({ key: ['durableStores', i, 'path'], dir: path.resolve(s.path) });
  });
  if (config.server.spool !== undefined)
    dirs.push({ key: ['server', 'spool'], dir: path.resolve(config.server.spool) });
  for (let a = 0; a < dirs.length; a++) {
    for (let b = a + 1; b < dirs.length; b++) {
      const x = dirs[a];
      const y = dirs[b];
      if (x && y && overlaps(x.dir, y.dir)) {
        issues.push(issueAt(y.key, `directory overlaps ${formatKeyPath(x.key)}; tier directories are wiped at start`));
      }
    }
  }
  const server = config.server;
  if (server.maxBatchBytes !== undefined && server.maxBatchBytes > server.maxMessageSize) {
    issues.push(issueAt(['server', 'maxBatchBytes'], 'maxBatchBytes cannot exceed maxMessageSize'));
  }
  return issues;
}

function overlaps(a: string, b: string): boolean {
  const within = (x: string, y: string): boolean => x === y || x.startsWith(y.endsWith(path.sep) ? y : y + path.sep);
  return within(a, b) || within(b, a);
}
