import type { Config } from '../config/schema.js';
import { formatExactDuration as formatDuration, formatExactSize as formatSize } from '../config/units.js';
import { normalizePath } from '../core/path.js';
import { InvalidArgumentError } from '../errors.js';
import { ClassRouter } from '../routing/router.js';
import { specsFor } from '../limits/limit-tree.js';

/** The text of `tierflight route FILE PATH`. */
export function describeRoute(config: Config, flightPath: string): string {
  const parsed = normalizePath([flightPath]);
  if (!parsed.ok) throw new InvalidArgumentError(parsed.reason);
  const { value: path, segments } = parsed;
  const cls = new ClassRouter(config.storageClasses).route(path, segments);
  const c = cls.config;
  const lines = [
    `path:        ${path}`,
    `class:       ${c.name} (prefix "${cls.prefix}")`,
    `durability:  ${c.durability}${c.durableStore ? ` → ${c.durableStore}:${c.durablePrefix}${path}` : ''}`,
    `ttl:         ${c.ttl === undefined ? 'none' : formatDuration(c.ttl)}`,
    'tiers:',
    ...c.tiers.map((t, i) => {
      const parts = [
        `${i}: ${t.storage}`,
        `maxFlightSize ${t.maxFlightSize === undefined ? 'unbounded' : formatSize(t.maxFlightSize)}`,
        `uploadSpill ${t.uploadSpill}`,
        `priority ${t.priority}`,
      ];
      if (t.evictionSpill) parts.push('evictionSpill');
      if (t.moveAfter !== undefined) parts.push(`moveAfter ${formatDuration(t.moveAfter)}`);
      if (t.promoteAfter)
        parts.push(`promoteAfter ${t.promoteAfter.accesses} reads in ${formatDuration(t.promoteAfter.within)}`);
      return `  ${parts.join(', ')}`;
    }),
  ];
  const policies = config.limitPolicies.filter((p) => p.classes.includes(c.name));
  lines.push(policies.length === 0 ? 'limits:      none' : 'limits:');
  const skip = cls.prefix === '' ? 0 : cls.prefix.split('/').length;
  const relative = segments.slice(skip);
  for (const p of policies) {
    lines.push(`  ${p.name} (${p.type}, scope ${p.scope}, onLimit ${p.onLimit}; shared by ${p.classes.join(', ')})`);
    const nodes = specsFor(p, relative);
    if (nodes.length === 0) lines.push('    no node applies at this depth');
    for (const n of nodes) {
      const where =
        n.key === ''
          ? `everything under ${p.classes.length > 1 ? 'these classes' : `"${cls.prefix}"`}`
          : `subtree "${n.key}"`;
      lines.push(`    ${where}: ${formatSize(n.limit)} (${n.source})`);
    }
  }
  return `${lines.join('\n')}\n`;
}
