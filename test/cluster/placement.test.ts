import { describe, expect, it } from 'vitest';
import { owners, rendezvousOrder } from '../../src/cluster/placement.js';

/**
 * The published properties of rendezvous hashing (Thaler and Ravishankar, 1996): every node
 * agrees on a key's owners whatever order it lists the members in; keys spread evenly; when
 * a member joins it takes about 1/n of the keys and only keys move to it; when one leaves,
 * only its keys move, each to the key's next member in order.
 */
const members = (n: number) => Array.from({ length: n }, (_, i) => ({ name: `node-${i}` }));
const keys = Array.from({ length: 30_000 }, (_, i) => `cache/reports/day-${i % 365}/part-${i}`);

describe('rendezvous placement', () => {
  it('gives every node the same owners, whatever order it lists the members in', () => {
    const a = members(5);
    const b = [...a].reverse();
    for (const key of keys.slice(0, 500)) {
      expect(owners(key, b, 2).map((m) => m.name)).toEqual(owners(key, a, 2).map((m) => m.name));
    }
  });

  it('spreads keys evenly: each of 3, 5 and 8 members holds its share within 5%', () => {
    for (const n of [3, 5, 8]) {
      const count = new Map<string, number>();
      for (const key of keys) {
        const first = owners(key, members(n), 1)[0]!.name;
        count.set(first, (count.get(first) ?? 0) + 1);
      }
      const share = keys.length / n;
      expect(count.size).toBe(n);
      for (const c of count.values()) expect(Math.abs(c - share) / share).toBeLessThan(0.05);
    }
  });

  it('moves only the keys a joining member now owns, about 1/n of them', () => {
    const before = members(4);
    const after = [...before, { name: 'node-new' }];
    let moved = 0;
    for (const key of keys) {
      const was = owners(key, before, 1)[0]!.name;
      const now = owners(key, after, 1)[0]!.name;
      if (was !== now) {
        expect(now).toBe('node-new'); // a key only ever moves to the new member
        moved++;
      }
    }
    expect(Math.abs(moved / keys.length - 1 / 5)).toBeLessThan(0.02);
  });

  it('when a member leaves, only its keys move, each to the next member in its order', () => {
    const all = members(5);
    const left = all.filter((m) => m.name !== 'node-2');
    for (const key of keys.slice(0, 5000)) {
      const order = rendezvousOrder(key, all).map((m) => m.name);
      const now = owners(key, left, 2).map((m) => m.name);
      expect(now).toEqual(order.filter((n) => n !== 'node-2').slice(0, 2));
    }
  });

  it('replicas are distinct members, primary first; asking for more than there are gives them all', () => {
    const five = members(5);
    const r = owners('a/b', five, 3);
    expect(new Set(r.map((m) => m.name)).size).toBe(3);
    expect(r[0]).toEqual(owners('a/b', five, 1)[0]);
    expect(owners('a/b', five, 9)).toHaveLength(5);
  });
});
