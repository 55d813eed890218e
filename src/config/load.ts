import { readFileSync } from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import { isMap, isNode, isPair, isScalar, LineCounter, parseDocument, type Document } from 'yaml';
import type { z } from 'zod';
import { normalizePrefix } from '../core/path.js';
import { clusterIssues } from './cluster.js';
import { securityIssues, substituteEnvironment } from './security.js';
import {
  configSchema,
  diskTypeSchema,
  durableStoreSchema,
  limitPolicySchema,
  reservationsSchema,
  authSchema,
  memoryTypeSchema,
  serverSchema,
  storageClassSchema,
  type Config,
} from './schema.js';

import type { ConfigIssue, PathKey } from './issue.js';

export type { ConfigIssue } from './issue.js';

export class ConfigError extends Error {
  readonly issues: ConfigIssue[];
  constructor(file: string, issues: ConfigIssue[]) {
    super(
      `${file}: ${issues.length} configuration error${issues.length === 1 ? '' : 's'}\n` +
        issues.map(formatIssue).join('\n'),
    );
    this.name = 'ConfigError';
    this.issues = issues;
  }
}

export function formatIssue(issue: ConfigIssue): string {
  const where = issue.line > 0 ? `${issue.file}:${issue.line}:${issue.column}` : issue.file;
  return `  ${where}: ${issue.key ? `${issue.key}: ` : ''}${issue.message}`;
}

export interface LoadedConfig {
  file: string;
  config: Config;
}

/** How much loading checks: `files: false` skips whether the TLS files exist (`tierflight route` needs none). */
export interface LoadOptions {
  files?: boolean;
}

export function loadConfigFile(file: string, options: LoadOptions = {}): LoadedConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why = e.code === 'ENOENT' ? 'no such file' : e.code === 'EISDIR' ? 'a directory, not a file' : e.message;
    throw new ConfigError(file, [
      { file, line: 0, column: 0, key: '', message: `cannot read the config file: ${why}` },
    ]);
  }
  return { file, config: parseConfigText(text, file, options) };
}

/**
 * Parses and validates a config text: YAML syntax, then the full schema, then the
 * cross-references the schema cannot see. Every problem is reported at once, each
 * with its line and column. Relative directories resolve against the file's folder.
 */
export function parseConfigText(text: string, file: string, options: LoadOptions = {}): Config {
  const files = options.files !== false;
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const locate = (offset: number): { line: number; column: number } => {
    const pos = lineCounter.linePos(offset);
    return { line: pos.line, column: pos.col };
  };
  if (doc.errors.length > 0) {
    throw new ConfigError(
      file,
      doc.errors.map((e) => ({ file, ...locate(e.pos[0]), key: '', message: e.message.split('\n')[0] ?? e.message })),
    );
  }
  const issueAt = (keyPath: PathKey[], message: string, keyName?: string): ConfigIssue => ({
    file,
    ...locate(offsetOf(doc, keyPath, keyName)),
    key: formatKeyPath(keyName === undefined ? keyPath : [...keyPath, keyName]),
    message,
  });

  const base = path.dirname(path.resolve(file));
  const env = substituteEnvironment(doc.toJS() ?? {}, issueAt);
  if (env.issues.length > 0) throw new ConfigError(file, sortIssues(env.issues));
  const raw = env.value;
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    // Report every error at once: the schema's, and the cross-reference checks over the
    // parts of the file that are well formed (names of broken entries still count).
    const schemaIssues = parsed.error.issues.flatMap((i) => zodIssueToConfigIssues(i, issueAt));
    const { config: partial, known } = partialConfig(raw);
    const seen = new Set(schemaIssues.map((i) => `${i.line}:${i.column}:${i.key}`));
    const cross = crossCheck(partial, issueAt, { base, files }, known).filter(
      (i) => !seen.has(`${i.line}:${i.column}:${i.key}`),
    );
    throw new ConfigError(file, sortIssues([...schemaIssues, ...cross]));
  }
  const config = parsed.data;
  const issues = crossCheck(config, issueAt, { base, files });
  if (issues.length > 0) throw new ConfigError(file, sortIssues(issues));
  return resolvePaths(config, base);
}

function zodIssueToConfigIssues(
  issue: z.core.$ZodIssue,
  issueAt: (p: PathKey[], m: string, k?: string) => ConfigIssue,
): ConfigIssue[] {
  const keyPath = issue.path.filter((k): k is PathKey => typeof k !== 'symbol');
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((k) => issueAt(keyPath, 'unknown key', k));
  }
  if (issue.code === 'invalid_union' && 'note' in issue && issue.note === 'No matching discriminator') {
    return [issueAt(keyPath, `unknown type; expected one of ${describeDiscriminator(issue)}`)];
  }
  if (issue.code === 'invalid_type' && issue.input === undefined) {
    return [issueAt(keyPath, 'required key is missing')];
  }
  return [issueAt(keyPath, issue.message)];
}

function describeDiscriminator(issue: z.core.$ZodIssue): string {
  const options = 'options' in issue && Array.isArray(issue.options) ? issue.options : undefined;
  return options ? options.join(', ') : 'the documented types';
}

/** Names of entries that failed the schema: references to them are not reported again. */
interface KnownNames {
  types: Set<string>;
  stores: Set<string>;
  classes: Set<string>;
  /** The `server` section failed the schema: checks that need it (TLS, its files) wait for it to be fixed. */
  serverBroken?: boolean;
}

/**
 * The well-formed parts of a file that failed the schema, each entry parsed on its own and
 * kept at its index (arrays may have holes), so cross-reference checks still run on them.
 */
function partialConfig(raw: unknown): { config: Config; known: KnownNames } {
  const known: KnownNames = { types: new Set(), stores: new Set(), classes: new Set() };
  const doc = (raw && typeof raw === 'object' ? raw : {}) as Record<string, unknown>;
  const nameOf = (v: unknown, key: string): string | undefined => {
    const n = (v as Record<string, unknown> | null)?.[key];
    return typeof n === 'string' ? n : undefined;
  };
  const sparse = <T>(value: unknown, schema: z.ZodType<T>, onFail: (v: unknown) => void): T[] => {
    const out: T[] = [];
    if (Array.isArray(value)) {
      value.forEach((v, i) => {
        const r = schema.safeParse(v);
        if (r.success) out[i] = r.data;
        else onFail(v);
      });
    }
    return out;
  };
  const types = (doc.storageTypes && typeof doc.storageTypes === 'object' ? doc.storageTypes : {}) as Record<
    string,
    unknown
  >;
  const storageTypes: Config['storageTypes'] = {};
  const memory = memoryTypeSchema.safeParse(types.memory);
  if (memory.success) storageTypes.memory = memory.data;
  for (const name of ['disk_mapped', 'disk'] as const) {
    const r = diskTypeSchema.safeParse(types[name]);
    if (r.success) storageTypes[name] = r.data;
  }
  for (const name of Object.keys(types)) if (!(name in storageTypes)) known.types.add(name);
  const server = serverSchema.safeParse(doc.server ?? {});
  known.serverBroken = !server.success;
  const config: Config = {
    server: server.success ? server.data : serverSchema.parse({}),
    storageTypes,
    durableStores: sparse(doc.durableStores, durableStoreSchema, (v) => {
      const id = nameOf(v, 'id');
      if (id) known.stores.add(id);
    }),
    storageClasses: sparse(doc.storageClasses, storageClassSchema, (v) => {
      const name = nameOf(v, 'name');
      if (name) known.classes.add(name);
    }),
    limitPolicies: sparse(doc.limitPolicies, limitPolicySchema, () => undefined),
    reservations: reservationsSchema.safeParse(doc.reservations ?? {}).data ?? reservationsSchema.parse({}),
    auth: authSchema.safeParse(doc.auth).data,
  };
  return { config, known };
}

/** Checks that need the whole file: names, references, overlaps. */
function crossCheck(
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

function resolvePaths(config: Config, base: string): Config {
  const abs = (p: string): string => path.resolve(base, p);
  const st = config.storageTypes;
  return {
    ...config,
    storageTypes: {
      ...st,
      ...(st.disk_mapped ? { disk_mapped: { ...st.disk_mapped, path: abs(st.disk_mapped.path) } } : {}),
      ...(st.disk ? { disk: { ...st.disk, path: abs(st.disk.path) } } : {}),
    },
    durableStores: config.durableStores.map((s) => (s.type === 'filesystem' ? { ...s, path: abs(s.path) } : s)),
    server: {
      ...config.server,
      ...(config.server.spool !== undefined ? { spool: abs(config.server.spool) } : {}),
      ...(config.server.tls
        ? {
            tls: {
              ...config.server.tls,
              cert: abs(config.server.tls.cert),
              key: abs(config.server.tls.key),
              ...(config.server.tls.clientCa !== undefined ? { clientCa: abs(config.server.tls.clientCa) } : {}),
            },
          }
        : {}),
    },
  };
}

/**
 * The spool directory (README "Durability"): `server.spool`; else, when some class is
 * durable, a default of this node's own, so nodes sharing a store or a machine never pick
 * the same one: `spool` beside the first tier directory (a directory this node owns), or
 * with no tier directory `$XDG_STATE_HOME/tierflight/spool-<node>` (`~/.local/state` when
 * XDG_STATE_HOME is unset), `<node>` being the cluster member name or the listen address.
 * In a cluster the spool beside a tier directory is `spool-<member>` too. Undefined when
 * no class is durable and none is configured.
 */
export function spoolDirectory(config: Config, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (config.server.spool !== undefined) return config.server.spool;
  if (!config.storageClasses.some((c) => c.durability !== 'none')) return undefined;
  const member = config.cluster?.self;
  const tier = config.storageTypes.disk_mapped?.path ?? config.storageTypes.disk?.path;
  if (tier !== undefined)
    return path.join(path.dirname(path.resolve(tier)), member ? `spool-${fileSafe(member)}` : 'spool');
  const stateHome = env.XDG_STATE_HOME || path.join(os.homedir(), '.local', 'state');
  return path.join(stateHome, 'tierflight', `spool-${fileSafe(member ?? config.server.listen)}`);
}

/** A member name or address as one file-name segment. */
function fileSafe(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]/g, '-');
}

/** Finds the source offset of a key path, falling back to the nearest existing parent. */
function offsetOf(doc: Document, keyPath: PathKey[], keyName?: string): number {
  for (let len = keyPath.length; len >= 0; len--) {
    const node = len === 0 ? doc.contents : doc.getIn(keyPath.slice(0, len), true);
    if (!isNode(node)) continue;
    if (len === keyPath.length && keyName !== undefined && isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === keyName);
      if (pair && isScalar(pair.key) && pair.key.range) return pair.key.range[0];
    }
    if (len < keyPath.length && isMap(node)) {
      // The key itself is missing or its value is null: point at the parent's key.
      const child = keyPath[len];
      const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && p.key.value === child);
      if (pair && isScalar(pair.key) && pair.key.range) return pair.key.range[0];
    }
    if (node.range) return node.range[0];
  }
  return 0;
}

function formatKeyPath(keyPath: PathKey[]): string {
  return keyPath.reduce<string>(
    (acc, k) => (typeof k === 'number' ? `${acc}[${k}]` : acc === '' ? k : `${acc}.${k}`),
    '',
  );
}

function sortIssues(issues: ConfigIssue[]): ConfigIssue[] {
  return [...issues].sort((a, b) => a.line - b.line || a.column - b.column);
}
