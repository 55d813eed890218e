import { readFileSync } from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import { isMap, isNode, isPair, isScalar, LineCounter, parseDocument, type Document } from 'yaml';
import type { z } from 'zod';
import { substituteEnvironment } from './security.js';
import { configSchema, type Config } from './schema.js';

import { formatKeyPath, type ConfigIssue, type PathKey } from './issue.js';
import { crossCheck } from './cross-check.js';
import { partialConfig } from './partial.js';

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

function sortIssues(issues: ConfigIssue[]): ConfigIssue[] {
  return [...issues].sort((a, b) => a.line - b.line || a.column - b.column);
}
