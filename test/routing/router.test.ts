import { describe, expect, it } from 'vitest';
import { isUnderPrefix, normalizePath, normalizePrefix } from '../../src/core/path.js';
import { ClassRouter, PrefixRouter } from '../../src/routing/router.js';
import type { StorageClassConfig } from '../../src/config/schema.js';

const cls = (name: string, prefix: string): StorageClassConfig => ({
  name,
  prefix,
  durability: 'none',
  durablePrefix: '',
  replicas: 1,
  tiers: [{ storage: 'memory', uploadSpill: 'reject', priority: 0, evictionSpill: false }],
});

describe('normalizePath', () => {
  it('joins segments so ["a","b"] and ["a/b"] are the same flight', () => {
    expect(normalizePath(['a', 'b'])).toEqual(normalizePath(['a/b']));
    expect(normalizePath(['a', 'b/c'])).toMatchObject({ ok: true, value: 'a/b/c', segments: ['a', 'b', 'c'] });
  });

  it.each([
    [[], /empty/],
    [['a', ''], /empty path segment/],
    [['//a'], /empty path segment/],
    [['/'], /empty path segment/],
    [['a', '/b'], /empty path segment/],
    [['a/'], /empty path segment/],
    [['a/./b'], /"\."/],
    [['..'], /"\.\."/],
    [['a\u0000b'], /control character/],
    [['a\nb'], /control character/],
    [['x'.repeat(1025)], /longer than 1024 bytes/],
    [['é'.repeat(513)], /longer than 1024 bytes/],
  ])('rejects %j', (parts, reason) => {
    const result = normalizePath(parts as string[]);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.reason).toMatch(reason);
  });

  it('ignores a leading "/", as Arrow integration clients send absolute file paths', () => {
    expect(normalizePath(['/data/gold/generated_primitive.json'])).toMatchObject({
      ok: true,
      value: 'data/gold/generated_primitive.json',
      segments: ['data', 'gold', 'generated_primitive.json'],
    });
    expect(normalizePath(['/a', 'b'])).toEqual(normalizePath(['a', 'b']));
  });

  it('accepts unicode and 1024 bytes exactly', () => {
    expect(normalizePath(['données', 'ß']).ok).toBe(true);
    expect(normalizePath(['x'.repeat(1024)]).ok).toBe(true);
  });

  it('normalises prefixes, allowing the root and a trailing slash', () => {
    expect(normalizePrefix('')).toMatchObject({ ok: true, value: '' });
    expect(normalizePrefix('cache/raw/')).toMatchObject({ ok: true, value: 'cache/raw' });
    expect(normalizePrefix('a//b').ok).toBe(false);
  });

  it('matches prefixes on whole segments', () => {
    expect(isUnderPrefix('cache/raw/x', 'cache/raw')).toBe(true);
    expect(isUnderPrefix('cache/raw', 'cache/raw')).toBe(true);
    expect(isUnderPrefix('cache/rawdata', 'cache/raw')).toBe(false);
    expect(isUnderPrefix('anything', '')).toBe(true);
  });
});

describe('ClassRouter', () => {
  const router = new ClassRouter([
    cls('root', ''),
    cls('cache', 'cache'),
    cls('raw', 'cache/raw'),
    cls('deep', 'a/b/c'),
  ]);
  const route = (p: string): string => {
    const n = normalizePath([p]);
    if (!n.ok) throw new Error(n.reason);
    return router.route(n.value, n.segments).config.name;
  };

  it('picks the longest whole-segment prefix', () => {
    expect(route('cache/raw/x')).toBe('raw');
    expect(route('cache/raw')).toBe('raw');
    expect(route('cache/rawdata')).toBe('cache');
    expect(route('cache')).toBe('cache');
    expect(route('cachex/raw')).toBe('root');
    expect(route('a/b')).toBe('root');
    expect(route('a/b/c/d')).toBe('deep');
  });

  it('refuses a path no class matches when there is no root class', () => {
    const noRoot = new ClassRouter([cls('cache', 'cache')]);
    expect(() => noRoot.route('other/x', ['other', 'x'])).toThrow(/no storage class matches flight "other\/x"/);
  });

  it('looks up in path length, not class count', () => {
    const trie = new PrefixRouter<number>();
    for (let i = 0; i < 10_000; i++) trie.add(['t', `c${i}`], i);
    expect(trie.match(['t', 'c9999', 'x'])).toBe(9999);
    expect(trie.match(['t', 'nope'])).toBeUndefined();
  });
});
