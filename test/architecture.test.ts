import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from './setup/python-env.js';

/**
 * ARCHITECTURE.md must match the tree: every file or folder it names exists, and every
 * folder of src/ (and every file directly in a layer folder's top level) is named.
 */
const TEXT = readFileSync(path.join(ROOT, 'ARCHITECTURE.md'), 'utf8');

/** `src/…` paths in backticks, and the file names written inside the row of their folder. */
function named(): Set<string> {
  const out = new Set<string>();
  for (const m of TEXT.matchAll(/`(src\/[\w./-]+?)\/?`/g)) out.add((m[1] as string).replace(/\/$/, ''));
  // A layer row's folder (second cell), then the bare names its description lists (`manager.ts`, `rpc/`).
  for (const row of TEXT.split('\n').filter((l) => l.startsWith('|'))) {
    const cells = row.split('|').map((c) => c.trim());
    const folder = /^`(src\/[\w-]+)\/`/.exec(cells[2] ?? '')?.[1];
    if (!folder) continue;
    for (const m of (cells[3] ?? '').matchAll(/`([\w-]+(?:\.ts|\/))`/g)) {
      out.add(`${folder}/${(m[1] as string).replace(/\/$/, '')}`);
    }
  }
  return out;
}

function walk(dir: string): string[] {
  return readdirSync(path.join(ROOT, dir)).flatMap((name) => {
    const rel = `${dir}/${name}`;
    return statSync(path.join(ROOT, rel)).isDirectory() ? [rel, ...walk(rel)] : [rel];
  });
}

describe('ARCHITECTURE.md', () => {
  it('names only paths that exist', () => {
    const missing = [...named()].filter((p) => !existsSync(path.join(ROOT, p)));
    expect(missing).toEqual([]);
  });

  it('names every folder of src/', () => {
    const folders = walk('src').filter((p) => statSync(path.join(ROOT, p)).isDirectory());
    const names = named();
    expect(folders.filter((f) => !names.has(f))).toEqual([]);
  });
});
