import type { Access } from '../config/schema.js';
import { isUnderPrefix, normalizePrefix } from '../core/path.js';

/**
 * A user's permissions (DESIGN §7): rules of path prefix and access words; the rule with
 * the longest prefix that contains a path (whole segments) decides what the user may do
 * there. A path no rule contains allows nothing.
 */
export class Permissions {
  /** Longest prefix first. */
  private readonly rules: { prefix: string; access: ReadonlySet<Access> }[];

  constructor(rules: readonly { prefix: string; access: readonly Access[] }[]) {
    this.rules = rules
      .map((r) => {
        const norm = normalizePrefix(r.prefix);
        if (!norm.ok) throw new Error(`permission prefix "${r.prefix}": ${norm.reason}`);
        return { prefix: norm.value, access: new Set(r.access) };
      })
      .sort((a, b) => segments(b.prefix) - segments(a.prefix));
  }

  can(path: string, access: Access): boolean {
    const rule = this.rules.find((r) => isUnderPrefix(path, r.prefix));
    return rule?.access.has(access) ?? false;
  }
}

function segments(prefix: string): number {
  return prefix === '' ? 0 : prefix.split('/').length;
}
