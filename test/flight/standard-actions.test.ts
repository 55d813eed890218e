import { execFile } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FlightClient } from '../../src/client/flight-client.js';
import { runPyClient } from '../helpers/python.js';
import { MEMORY_ONLY, startTestServer, type TestServer } from '../helpers/server.js';
import { GO_CLIENT } from '../setup/clients.js';

/**
 * The Flight protocol's standard actions, RenewFlightEndpoint and CancelFlightInfo: with
 * arrow-go's client methods of those names, and through do_action from pyarrow (which has
 * no helper for them), protobuf bodies and all.
 */
describe('the standard actions RenewFlightEndpoint and CancelFlightInfo', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer(MEMORY_ONLY('64MiB'), { server: '  ticketGrace: 30s\n' });
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('are listed by ListActions with what they do', async () => {
    const client = new FlightClient(server.location);
    const actions = await client.listActions();
    client.close();
    const standard = actions.filter((a) => a.type === 'RenewFlightEndpoint' || a.type === 'CancelFlightInfo');
    expect(standard.map((a) => a.type).sort()).toEqual(['CancelFlightInfo', 'RenewFlightEndpoint']);
    for (const a of standard) expect(a.description).toMatch(/protobuf/);
  });

  it('from pyarrow through do_action: renewed tickets outlive a replace, cancels end waits', async () => {
    const out = await runPyClient<{
      listed: string[];
      renew: { same_ticket: boolean; later_by_s: number };
      old_ticket_rows: number;
      cancel_landed: number;
      cancel_reserved: number;
      waiter: { result: { error: string; message: string }; seconds: number };
      cancel_unknown: { error: string; message: string };
      renew_garbage: { error: string; message: string };
    }>('std-actions', server.location);
    expect(out.listed).toEqual(['CancelFlightInfo', 'RenewFlightEndpoint']);
    expect(out.renew.same_ticket).toBe(true);
    expect(out.renew.later_by_s).toBeGreaterThanOrEqual(1);
    expect(out.old_ticket_rows).toBe(3); // the version the ticket named, not the 1-row replacement
    expect(out.cancel_landed).toBe(3); // CANCEL_STATUS_NOT_CANCELLABLE
    expect(out.cancel_reserved).toBe(1); // CANCEL_STATUS_CANCELLED
    expect(out.waiter.result.error).toBe('FlightCancelledError');
    expect(out.waiter.result.message).toMatch(/the wait for flight "std\/wait" was ended by CancelFlightInfo/);
    expect(out.waiter.seconds).toBeLessThan(5);
    expect(out.cancel_unknown.error).toBe('ArrowKeyError'); // NOT_FOUND
    expect(out.cancel_unknown.message).toMatch(/flight "std\/nobody" is neither stored nor reserved/);
    expect(out.renew_garbage.error).toBe('ArrowInvalid'); // INVALID_ARGUMENT
    expect(out.renew_garbage.message).toMatch(/not a RenewFlightEndpointRequest message/);
  });

  it("with arrow-go's RenewFlightEndpoint and CancelFlightInfo", async () => {
    const out = await new Promise<Record<string, { ok: boolean; error?: string; rows: number }>>((resolve, reject) => {
      execFile(GO_CLIENT, ['standard-actions', server.location], { timeout: 120_000 }, (err, stdout, stderr) =>
        err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(JSON.parse(stdout)),
      );
    });
    expect(out['standard-actions']).toEqual({ ok: true, batches: 0, acks: 0, rows: 3, endpoints: 0 });
  });
});
