import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runPyClient } from '../helpers/python.js';
import { MEMORY_ONLY, startTestServer, type TestServer } from '../helpers/server.js';

describe('batch-range tickets and DoAction verbs (pyarrow client)', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer(MEMORY_ONLY('64MiB'), { server: '  maxEndpointBytes: 1MiB\n  ticketGrace: 2s\n' });
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('serves any batch range with the dictionaries it depends on', async () => {
    const out = await runPyClient<Record<string, { rows: number; equal: boolean }>>('range', server.location);
    expect(out).toEqual({
      '0-4': { rows: 20, equal: true },
      '1-3': { rows: 10, equal: true },
      '3-4': { rows: 8, equal: true },
      '2-2': { rows: 0, equal: true },
    });
  });

  it('never mixes versions: tickets of a replaced flight read it until their expiration, then NOT_FOUND; ranges are never clamped', async () => {
    const out = await runPyClient<{
      endpoints: number;
      first_version: number[];
      rest: { rows: number; versions: number[] }[];
      expires_in: number;
      late: { error: string; message: string }[];
      fresh: { rows: number; versions: number[] };
      past_end: { error: string; message: string };
      inverted: { error: string; message: string };
    }>('replaced', server.location);
    expect(out.endpoints).toBe(6);
    expect(out.first_version).toEqual([1]);
    // Within server.ticketGrace (2 s here), the old tickets still read the old version, whole.
    expect(out.rest).toEqual(Array.from({ length: 5 }, () => ({ rows: 65536, versions: [1] })));
    expect(out.expires_in).toBeGreaterThan(0.5);
    expect(out.expires_in).toBeLessThanOrEqual(2);
    // Past their expiration_time, NOT_FOUND: a ticket never reads another version.
    expect(out.late).toHaveLength(5);
    for (const r of out.late) {
      expect(r.error).toBe('ArrowKeyError'); // how pyarrow surfaces NOT_FOUND
      expect(r.message).toMatch(/flight "rep\/f" was replaced after this ticket was issued.*call GetFlightInfo again/);
    }
    expect(out.fresh).toEqual({ rows: 6 * 65536, versions: [2] });
    expect(out.past_end.error).toBe('ArrowInvalid');
    expect(out.past_end.message).toMatch(/batches 5\.\.9 are outside this version's 6 batches/);
    expect(out.inverted.message).toMatch(/"from" and "to" must be batch indices with from <= to/);
    server.app.manager.checkAccounting();
  });

  it('lists, reports, deletes and refuses unknown verbs', async () => {
    const out = await runPyClient<Record<string, unknown>>('actions', server.location);
    expect(out.types).toEqual([
      'CancelFlightInfo',
      'RenewFlightEndpoint',
      'backfill',
      'backfill-status',
      'cluster',
      'cluster-dataset',
      'cluster-resync',
      'delete',
      'delete-prefix',
      'pin',
      'prefetch',
      'release',
      'reserve',
      'stats',
      'unpin',
    ]);
    expect(out.list_act_a).toEqual(['act/a/1', 'act/a/2']); // whole segments: not act/ab
    expect(out.stats_before).toMatchObject({ default: { prefix: '' } });
    expect(out.delete).toEqual([{ deleted: true }]);
    expect(out.delete_again).toEqual([{ deleted: false }]);
    expect(out.delete_prefix).toEqual([{ deleted: 2 }]);
    expect(out.left).toEqual(['act/ab']);
    for (const refused of [out.everything_refused, out.slash_refused]) {
      expect(refused).toMatch(/an empty prefix deletes every flight.*\{"prefix": "", "all": true\}/);
    }
    expect(out.bogus).toMatch(/unknown action "bogus"; available: delete, delete-prefix, stats/);
    expect(out.bad_body).toMatch(/action "delete": body must be JSON/);
    server.app.manager.checkAccounting();
  });
});
