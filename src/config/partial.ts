import { z } from 'zod';
import { configSchema, type Config } from './schema.js';

/** Names the file defines in entries that failed the schema: references to them are not reported twice. */
export interface KnownNames {
  types: Set<string>;
  stores: Set<string>;
  classes: Set<string>;
  /** The `server` section failed the schema: checks that need it (TLS, its files) wait for it to be fixed. */
  serverBroken?: boolean;
}

/** Which field names an entry of a list section, and where the names of broken entries go. */
const NAMED_BY: Readonly<Record<string, { field: string; into: 'stores' | 'classes' }>> = {
  durableStores: { field: 'id', into: 'stores' },
  storageClasses: { field: 'name', into: 'classes' },
};

/**
 * The well-formed parts of a file that failed the schema, read with the schema itself, so
 * the cross-reference checks still run on every section that is well formed (cluster
 * included): each top-level section parsed on its own; a list section entry by entry (kept
 * at its index: arrays may have holes); an object of optional entries (storageTypes) entry
 * by entry; a broken section falls back to its default, if it has one.
 */
export function partialConfig(raw: unknown): { config: Config; known: KnownNames } {
  const known: KnownNames = { types: new Set(), stores: new Set(), classes: new Set() };
  const doc = isRecord(raw) ? raw : {};
  const out: Record<string, unknown> = {};
  for (const [key, schema] of Object.entries(configSchema.shape) as [string, z.ZodType][]) {
    const value = doc[key];
    const whole = schema.safeParse(value);
    if (whole.success) {
      out[key] = whole.data;
      continue;
    }
    const inner = unwrap(schema);
    if (inner instanceof z.ZodArray && Array.isArray(value)) {
      const element = inner.element as z.ZodType;
      const named = NAMED_BY[key];
      const entries: unknown[] = [];
      value.forEach((v, i) => {
        const r = element.safeParse(v);
        if (r.success) entries[i] = r.data;
        else if (named && isRecord(v)) {
          const name = v[named.field];
          if (typeof name === 'string') known[named.into].add(name);
        }
      });
      out[key] = entries;
    } else if (inner instanceof z.ZodObject && isRecord(value) && key === 'storageTypes') {
      const entries: Record<string, unknown> = {};
      for (const [name, v] of Object.entries(value)) {
        const entrySchema = (inner.shape as Record<string, z.ZodType | undefined>)[name];
        const r = entrySchema?.safeParse(v);
        if (r?.success) entries[name] = r.data;
        else known.types.add(name);
      }
      out[key] = entries;
    } else {
      const fallback = schema.safeParse(undefined);
      out[key] = fallback.success ? fallback.data : Array.isArray(value) ? [] : undefined;
      if (key === 'server') known.serverBroken = true;
    }
  }
  return { config: out as Config, known };
}

/** The schema inside `.optional()`, `.default()` and `.prefault()`. */
function unwrap(schema: z.ZodType): z.ZodType {
  let s = schema;
  while (s instanceof z.ZodOptional || s instanceof z.ZodDefault || s instanceof z.ZodPrefault) {
    s = s.def.innerType as z.ZodType;
  }
  return s;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
