import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runPyClient } from '../helpers/python.js';
import { MEMORY_ONLY, startTestServer, type TestServer } from '../helpers/server.js';

interface RoundTrip {
  ok: boolean;
  problems: string[];
  rows: number;
  batches: number;
  total_bytes: number;
}

// Every Arrow type family, put and got back by pyarrow.flight, with nulls and per-batch
// app_metadata; the Python side compares schemas, values and the batches' IPC bytes.
const TYPE_CASES = [
  'int/int8', 'int/int16', 'int/int32', 'int/int64',
  'uint/uint8', 'uint/uint16', 'uint/uint32', 'uint/uint64',
  'float/halffloat', 'float/float32', 'float/float64', 'float/nan', 'bool',
  'string/utf8', 'string/large', 'string/view',
  'binary/binary', 'binary/large', 'binary/view', 'binary/fixed',
  'decimal/128', 'decimal/256',
  'temporal/date32', 'temporal/date64', 'temporal/times', 'temporal/timestamps', 'temporal/durations',
  'temporal/intervals',
  'nested/list', 'nested/large_list', 'nested/fixed_size_list', 'nested/list_view', 'nested/struct', 'nested/map',
  'union/sparse', 'union/dense',
  'dictionary/flat', 'dictionary/int8_index', 'dictionary/in_list', 'dictionary/in_struct',
  'null', 'run_end_encoded', 'metadata',
]; // prettier-ignore

describe('pyarrow.flight interoperability', () => {
  let server: TestServer;
  let types: Record<string, RoundTrip>;

  beforeAll(async () => {
    server = await startTestServer(MEMORY_ONLY('3GiB'));
    types = await runPyClient<Record<string, RoundTrip>>('types', server.location);
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('covers exactly the listed type cases', () => {
    expect(Object.keys(types).sort()).toEqual([...TYPE_CASES].sort());
  });

  it.each(TYPE_CASES)('round-trips %s bit-exact with app_metadata', (name) => {
    const result = types[name];
    expect(result?.problems).toEqual([]);
    expect(result?.ok).toBe(true);
    expect(result?.batches).toBeGreaterThan(0);
  });

  it('round-trips zero-row, schema-only, delta and replaced dictionaries', async () => {
    const special = await runPyClient<Record<string, RoundTrip>>('special', server.location);
    for (const [name, result] of Object.entries(special)) {
      expect({ name, problems: result.problems }).toEqual({ name, problems: [] });
    }
    expect(special.zero_rows?.rows).toBe(0);
    expect(special.schema_only?.batches).toBe(0);
    expect(special.delta_dictionary?.batches).toBe(3);
  });

  it('round-trips a flight of 5,000 tiny batches', async () => {
    const result = await runPyClient<RoundTrip>('many', server.location, ['--batches', '5000']);
    expect(result.problems).toEqual([]);
    expect(result.batches).toBe(5000);
    expect(result.rows).toBe(5000);
  });

  it('round-trips a flight of 1 GiB', async () => {
    const result = await runPyClient<RoundTrip & { bytes: number }>('large', server.location, ['--mib', '1024']);
    expect(result.problems).toEqual([]);
    expect(result.bytes).toBeGreaterThanOrEqual(1024 * 1024 * 1024);
    expect(result.total_bytes).toBeGreaterThanOrEqual(1024 * 1024 * 1024);
  });

  it('keeps exact accounting after all of it', () => {
    server.app.manager.checkAccounting();
    const stats = server.app.manager.stats();
    expect(stats.putsInProgress).toBe(0);
    expect(stats.storageTypes.memory?.reserved).toBe(0);
    expect(stats.storageTypes.memory?.pinnedRetired).toBe(0);
    expect(stats.storageTypes.memory?.used).toBe(stats.classes.default?.bytes);
  });
});
