import { accessSync, constants, statSync } from 'node:fs';
import path from 'node:path';
import { DistinguishedNameError, parseDistinguishedName } from '../core/distinguished-name.js';
import { normalizePrefix } from '../core/path.js';
import type { ConfigIssue, PathKey } from './issue.js';
import type { Config } from './schema.js';

type IssueAt = (p: PathKey[], m: string, k?: string) => ConfigIssue;

/**
 * The security part of config loading (DESIGN §7): `${NAME}` values read from the
 * environment (how secrets stay out of the file), and the checks on TLS and users that need
 * the whole file. Never puts a secret's value in a message.
 */
export function securityIssues(
  config: Config,
  issueAt: IssueAt,
  context: { base: string; files: boolean; serverBroken: boolean },
): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  // A server section that failed the schema is reported already; what depends on it waits.
  const tls = context.serverBroken ? undefined : config.server.tls;
  if (tls && context.files) {
    for (const key of ['cert', 'key', 'clientCa'] as const) {
      const file = tls[key];
      if (file === undefined) continue;
      const problem = unreadable(path.resolve(context.base, file));
      if (problem) issues.push(issueAt(['server', 'tls', key], `${file}: ${problem}`));
    }
  }
  if (tls?.requireClientCert && tls.clientCa === undefined) {
    issues.push(
      issueAt(
        ['server', 'tls', 'requireClientCert'],
        'requireClientCert needs clientCa (the CA client certificates are checked against)',
      ),
    );
  }
  const userNames = new Set<string>();
  config.auth?.users.forEach((user, i) => {
    if (userNames.has(user.name))
      issues.push(issueAt(['auth', 'users', i, 'name'], `duplicate user name "${user.name}"`));
    userNames.add(user.name);
    if (user.passwordHash === undefined && user.certSubject === undefined) {
      issues.push(
        issueAt(['auth', 'users', i], `user "${user.name}" needs a passwordHash or a certSubject to log in with`),
      );
    }
    if (user.certSubject !== undefined) {
      try {
        parseDistinguishedName(user.certSubject);
      } catch (err) {
        if (!(err instanceof DistinguishedNameError)) throw err;
        issues.push(issueAt(['auth', 'users', i, 'certSubject'], `not a distinguished name: ${err.message}`));
      }
    }
    if (user.certSubject !== undefined && !context.serverBroken && tls?.clientCa === undefined) {
      issues.push(
        issueAt(['auth', 'users', i, 'certSubject'], 'certSubject needs mutual TLS: set server.tls.clientCa'),
      );
    }
    user.permissions.forEach((p, j) => {
      const norm = normalizePrefix(p.prefix);
      if (!norm.ok) issues.push(issueAt(['auth', 'users', i, 'permissions', j, 'prefix'], norm.reason));
    });
  });
  return issues;
}

/**
 * What is valid but unsafe, for `validate` and the start's log: with users configured, a
 * metrics port any host can reach without a token or a client certificate shows every
 * limit's label (tenant and path names) to whoever asks.
 */
export function securityWarnings(config: Config): string[] {
  const out: string[] = [];
  const metrics = config.server.metrics;
  const guarded = config.server.metricsToken !== undefined || config.server.tls?.requireClientCert === true;
  if (config.auth && metrics !== undefined && !guarded && !isLoopback(metrics)) {
    out.push(
      `server.metrics: ${metrics} answers anyone who reaches it, and /metrics names tenants and paths ` +
        '(limit labels) although users are configured: set server.metricsToken, require client ' +
        'certificates (server.tls.requireClientCert), or listen on loopback',
    );
  }
  return out;
}

/** Why a file cannot be read, or undefined when it can. */
function unreadable(file: string): string | undefined {
  try {
    accessSync(file, constants.R_OK);
    return statSync(file).isFile() ? undefined : 'not a file';
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'ENOENT'
      ? 'no such file'
      : code === 'EACCES'
        ? 'not readable by the server'
        : (err as Error).message;
  }
}

function isLoopback(address: string): boolean {
  const host = address.slice(0, address.lastIndexOf(':')).replace(/^\[(.*)\]$/, '$1');
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

/**
 * `${NAME}` in a value is replaced by the environment variable NAME: a whole value (a secret
 * kept out of the file) or part of one (`self: ${POD_IP}:8815`).
 */
const ENV_REFERENCE = /\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g;

export function substituteEnvironment(raw: unknown, issueAt: IssueAt): { value: unknown; issues: ConfigIssue[] } {
  const issues: ConfigIssue[] = [];
  const walk = (value: unknown, at: PathKey[]): unknown => {
    if (typeof value === 'string') {
      return value.replace(ENV_REFERENCE, (_whole, name: string) => {
        const found = process.env[name];
        if (found === undefined || found === '') issues.push(issueAt(at, `environment variable ${name} is not set`));
        return found ?? '';
      });
    }
    if (Array.isArray(value)) return value.map((v, i) => walk(v, [...at, i]));
    if (value && typeof value === 'object') {
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, walk(v, [...at, k])]));
    }
    return value;
  };
  return { value: walk(raw, []), issues };
}
