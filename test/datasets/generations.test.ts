import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { flightPath, partitionOf, partitionPath, ticketPath } from '../../src/core/path.js';
import { Datasets, parsePartition } from '../../src/datasets/datasets.js';

const settle = () => new Promise((r) => setTimeout(r, 0));
const landed = (tag: string) => ({ tag });

function setup() {
  const clock = new ManualClock(0);
  const removed: string[] = [];
  const stored: string[] = [];
  const datasets = new Datasets(clock, {
    stored: () => stored.filter((p) => !removed.includes(p)) as ReturnType<typeof flightPath>[],
    remove: (paths) => removed.push(...paths),
    pin: () => Promise.resolve(),
    graceMs: 1_000,
  });
  return { clock, removed, stored, datasets, path: flightPath('d/x') };
}

describe('dataset generations', () => {
  it('become visible when the last partition lands; the replaced one goes after the ticket grace', async () => {
    const { clock, removed, datasets, path } = setup();
    const g1 = datasets.begin(path, 0, 2);
    expect(datasets.begin(path, 1, 2)).toBe(g1); // the same generation
    expect(datasets.landed(g1, 1, landed('a1'))).toBe(false);
    expect(() => datasets.visible(path)).toThrow(/1 of 2 partitions have landed; missing partition 0/);
    expect(datasets.landed(g1, 0, landed('a0'))).toBe(true);
    expect(datasets.visible(path)).toBe(g1);

    // Partition 0 put again: a new generation; the old one stays visible until it completes.
    const g2 = datasets.begin(path, 0, 2);
    expect(g2.number).toBe(g1.number + 1);
    datasets.landed(g2, 0, landed('b0'));
    expect(datasets.visible(path)).toBe(g1);
    datasets.landed(g2, 1, landed('b1'));
    expect(datasets.visible(path)).toBe(g2);
    expect(removed).toEqual([]); // g1's partitions stay for its tickets
    clock.advance(1_000);
    await settle();
    expect(removed.sort()).toEqual([partitionPath(path, 1, 0, 2), partitionPath(path, 1, 1, 2)].sort());
  });

  it('abandon a pending generation that a partition is put to twice, and drop late partitions of it', () => {
    const { removed, datasets, path } = setup();
    const g1 = datasets.begin(path, 0, 3);
    datasets.landed(g1, 0, landed('a0'));
    const late = datasets.begin(path, 1, 3); // still g1
    const g2 = datasets.begin(path, 0, 3); // partition 0 again: g1 is abandoned
    expect(g2).not.toBe(g1);
    expect(removed).toEqual([partitionPath(path, 1, 0, 3)]);
    expect(datasets.landed(late, 1, landed('a1'))).toBe(false); // landed after it was abandoned
    expect(removed).toContain(partitionPath(path, 1, 1, 3));
    // Another partition count starts a new generation too.
    expect(datasets.begin(path, 1, 4)).not.toBe(g2);
  });

  it('lose every dataset with a partition on a member that went down, unless its class keeps it', () => {
    const { removed, datasets } = setup();
    const [onB, elsewhere, durable] = [flightPath('d/on-b'), flightPath('d/elsewhere'), flightPath('d/durable')];
    for (const dataset of [onB, elsewhere, durable]) {
      // A home hears of each partition from its owner by generation number (`generation`).
      const number = datasets.begin(dataset, 0, 2).number;
      for (const i of [0, 1]) {
        const node = dataset !== elsewhere && i === 1 ? 'node-b' : 'node-a';
        datasets.landed(datasets.generation(dataset, number, 2), i, { tag: `t${i}`, node, records: 10, bytes: 100 });
      }
      expect(datasets.visible(dataset).landed.get(1)).toMatchObject({ records: 10, bytes: 100 });
    }
    datasets.memberLost('node-b', (d) => d === durable);
    expect(() => datasets.visible(onB)).toThrow(/lost partition 1 of 2 \(its node node-b left\); recompute it/);
    expect(removed.sort()).toEqual([partitionPath(onB, 1, 0, 2), partitionPath(onB, 1, 1, 2)].sort());
    expect(datasets.visible(elsewhere).count).toBe(2);
    expect(datasets.visible(durable).count).toBe(2);
    // A partition landing for a generation the home no longer has goes (it was dropped meanwhile).
    expect(datasets.landed(datasets.generation(onB, 1, 2), 0, { tag: 'late', node: 'node-a' })).toBe(false);
    expect(removed.filter((p) => p === partitionPath(onB, 1, 0, 2))).toHaveLength(2);
  });

  it('are found again at a home from the partitions members report, in any order', () => {
    const { removed, datasets, path } = setup();
    const at = (g: number, i: number, n = 2) => ({ path: partitionPath(path, g, i, n), landed: { tag: `g${g}p${i}` } });
    // Generation 2 complete over two reports, generation 1 a leftover, generation 3 still being written.
    datasets.recover(path, [at(2, 1), at(3, 0)]);
    expect(() => datasets.visible(path)).toThrow(/not complete/);
    expect(datasets.missing(path)).toEqual([partitionPath(path, 3, 1, 2)]); // what a home looks for in the store
    datasets.recover(path, [at(1, 0), at(2, 0)]);
    expect(datasets.visible(path)).toMatchObject({ number: 2 });
    expect(datasets.missing(path)).toBeUndefined();
    expect(datasets.visible(path).landed.get(0)).toEqual({ tag: 'g2p0' });
    expect(removed).toEqual([partitionPath(path, 1, 0, 2)]);
    // Generation 3 completes when its owner's put lands; a new put starts generation 4.
    expect(datasets.landed(datasets.generation(path, 3, 2), 1, { tag: 'g3p1' })).toBe(true);
    expect(datasets.visible(path)).toMatchObject({ number: 3 });
    expect(datasets.begin(path, 0, 2).number).toBe(4);
    // A node no longer the home forgets it, leaving its partitions alone.
    const before = removed.length;
    datasets.forget(() => false);
    expect(datasets.has(path)).toBe(false);
    expect(removed).toHaveLength(before);
  });

  it('delete a dataset with every generation, the retiring ones included', async () => {
    const { removed, datasets, path } = setup();
    for (const tag of ['a', 'b']) {
      const g = datasets.begin(path, 0, 1);
      datasets.landed(g, 0, landed(tag));
    }
    expect(datasets.drop(path)).toBe(true);
    expect(removed.sort()).toEqual([partitionPath(path, 1, 0, 1), partitionPath(path, 2, 0, 1)].sort());
    expect(datasets.has(path)).toBe(false);
    expect(datasets.drop(path)).toBe(false);
  });

  it('are found again from their stored partitions after a restart; leftovers of older generations go', () => {
    const { stored, removed, datasets, path } = setup();
    stored.push(
      partitionPath(path, 3, 0, 2), // an older complete generation: replaced, goes
      partitionPath(path, 3, 1, 2),
      partitionPath(path, 4, 0, 2), // the newest complete one: visible
      partitionPath(path, 4, 1, 2),
      partitionPath(path, 5, 1, 3), // being written: one of three so far
    );
    expect(datasets.visible(path).number).toBe(4);
    expect(removed.sort()).toEqual([partitionPath(path, 3, 0, 2), partitionPath(path, 3, 1, 2)].sort());
    // The listing finds the rest of generation 5: it becomes visible.
    stored.push(partitionPath(path, 5, 0, 3), partitionPath(path, 5, 2, 3));
    datasets.drop(flightPath('other')); // unrelated
    expect(datasets.visible(path).number).toBe(5);
    // A new put starts generation 6.
    expect(datasets.begin(path, 0, 3).number).toBe(6);
  });

  it('parse the partition header and the partition paths', () => {
    expect(parsePartition('3/8')).toEqual({ index: 3, count: 8 });
    for (const bad of ['8/8', '-1/8', '1/0', 'a/b', '1/5000', '1'])
      expect(() => parsePartition(bad)).toThrow(/x-tierflight-partition/);
    const p = partitionPath(flightPath('a/b'), 4, 7, 9);
    expect(partitionOf(p)).toEqual({ dataset: 'a/b', generation: 4, index: 7, count: 9 });
    expect(p).toBe('a/b/.tierflight-partition/4/7-of-9');
    expect(ticketPath(p)).toBe(p);
    expect(partitionOf('a/b')).toBeUndefined();
    expect(() => flightPath(p)).toThrow(/reserved/);
  });
});
