import { describe, expect, it } from 'vitest';
import { ActionRegistry, builtinActions, type ActionContext, type ActionVerb } from '../../src/flight/actions/index.js';
import { silentLogger } from '../../src/core/log.js';

const context = {
  manager: undefined,
  log: silentLogger,
  peer: 'test',
  user: 'test',
  identity: { user: 'test', anonymous: false, can: () => true },
} as unknown as ActionContext;

async function collect(results: AsyncIterable<Buffer>): Promise<unknown[]> {
  const out: unknown[] = [];
  for await (const r of results) out.push(JSON.parse(r.toString('utf8')));
  return out;
}

describe('DoAction verb registry', () => {
  it('lists the built-in verbs, each with a description and the permission it needs', () => {
    expect(
      builtinActions()
        .list()
        .map((v) => [v.type, v.permission]),
    ).toEqual([
      ['delete', 'write'],
      ['delete-prefix', 'admin'],
      ['stats', 'admin'],
      ['reserve', 'write'],
      ['release', 'write'],
      ['pin', 'admin'],
      ['unpin', 'admin'],
      ['backfill', 'admin'],
      ['backfill-status', 'admin'],
      ['prefetch', 'admin'],
      ['cluster', 'admin'],
      ['cluster-resync', 'admin'],
      ['cluster-dataset', 'admin'],
      ['RenewFlightEndpoint', 'read'],
      ['CancelFlightInfo', 'write'],
    ]);
    for (const verb of builtinActions().list()) expect(verb.description.length).toBeGreaterThan(20);
  });

  it('streams a long verb’s results one by one, as JSON', async () => {
    const progress: ActionVerb = {
      type: 'count',
      description: 'counts to three',
      permission: 'read',
      async *run() {
        for (let i = 1; i <= 3; i++) yield { step: i, done: i === 3 };
      },
    };
    const registry = new ActionRegistry([progress]);
    expect(await collect(registry.run('count', Buffer.alloc(0), context))).toEqual([
      { step: 1, done: false },
      { step: 2, done: false },
      { step: 3, done: true },
    ]);
  });

  it('refuses an unknown verb naming the ones there are, and a verb registered twice', async () => {
    const registry = builtinActions();
    await expect(collect(registry.run('nope', Buffer.alloc(0), context))).rejects.toThrow(
      /unknown action "nope"; available: delete, delete-prefix, stats, reserve, release, pin, unpin, backfill, backfill-status, prefetch, cluster, cluster-resync, cluster-dataset/,
    );
    expect(() => registry.register(registry.list()[0]!)).toThrow(/registered twice/);
  });
});
