import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { runPyClient } from '../helpers/python.js';
import { GO_CLIENT } from '../setup/clients.js';
import { MEMORY_ONLY, startTestServer, type TestServer } from '../helpers/server.js';

type PyError = { error: string; message: string };

/**
 * Column projection (a ticket's or a command descriptor's `columns`): headers rewritten and
 * bodies gathered without decoding values, equal to pyarrow's Table.select of the stored
 * table for every type the suite has, compressed or not.
 */
describe('column projection (pyarrow)', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer(MEMORY_ONLY('256MiB'));
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('streams only the chosen columns, equal to Table.select, for every type and codec', async () => {
    const out = await runPyClient<{
      mismatches: unknown[];
      checked: number;
      columns: number;
      tables: number;
      unknown_info: PyError;
      unknown_ticket: PyError;
      bad_command: PyError;
      dataset: { endpoints: number; equal: boolean };
      range_equal: boolean;
    }>('projection', server.location, ['--path', 'proj']);
    expect(out.mismatches).toEqual([]);
    expect(out.dataset).toEqual({ endpoints: 3, equal: true });
    expect(out.range_equal).toBe(true);
    expect(out.columns).toBeGreaterThan(40);
    expect(out.checked).toBe(3 * (out.columns + 6 * out.tables));
    expect(out.unknown_info.message).toMatch(/no columns "nope", "nada" in the flight/);
    expect(out.unknown_ticket.message).toMatch(/no column "nope" in the flight/);
    expect(out.bad_command.message).toMatch(/CMD descriptor must be JSON \{"path"/);
    server.app.manager.checkAccounting();
  });

  it('reads a projection through a command descriptor with arrow-go, batch by batch equal to the chosen columns', async () => {
    const { stdout } = await promisify(execFile)(GO_CLIENT, ['projection', `127.0.0.1:${server.port}`], {
      timeout: 120_000,
    });
    expect(JSON.parse(stdout)).toMatchObject({ projection: { ok: true, batches: 3, rows: 90 } });
  });
});
