import { status } from '@grpc/grpc-js';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runPyClient } from '../helpers/python.js';
import {
  decodeFlightData,
  encodeRequest,
  flightData,
  ipcMessages,
  RawFlightClient,
  type CallOutcome,
} from '../helpers/raw-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { Fuzzer, type Message } from '../helpers/fuzzer.js';
import { PYTHON, ROOT } from '../setup/python-env.js';

/**
 * A bounded, seeded mutation fuzz test of everything a client sends: DoPut streams
 * (pyarrow-written seed streams of every type family, with bits flipped, words and
 * lengths overwritten, headers and bodies cut, messages dropped, repeated and reordered),
 * tickets, descriptors and action bodies. What it asserts is what users rely on: the
 * server keeps serving and never answers INTERNAL to a well-formed call; a refused put
 * leaves nothing visible; every accepted flight reads back byte for byte and pyarrow
 * reads and validates it; accounting returns to where it was.
 *
 * TIERFLIGHT_FUZZ_SEED and TIERFLIGHT_FUZZ_INPUTS reproduce or scale a run;
 * TIERFLIGHT_FUZZ_DUMP=DIR writes each violating put's messages there as an IPC stream.
 */
const SEED = Number(process.env.TIERFLIGHT_FUZZ_SEED ?? 20261123);
const INPUTS = Number(process.env.TIERFLIGHT_FUZZ_INPUTS ?? 3000);

/** Writes messages as an Arrow IPC stream (for reproducing a violation with pyarrow). */
async function dumpStream(dir: string, flightPath: string, messages: Message[]): Promise<void> {
  const parts: Buffer[] = [];
  for (const m of messages.filter((x) => x.header.length > 0)) {
    const padded = (m.header.length + 7) & ~7;
    const prefix = Buffer.alloc(8);
    prefix.writeUInt32LE(0xffffffff, 0);
    prefix.writeInt32LE(padded, 4);
    parts.push(prefix, m.header, Buffer.alloc(padded - m.header.length), m.body);
  }
  await writeFile(path.join(dir, `${flightPath.replaceAll('/', '_')}.arrows`), Buffer.concat(parts));
}

/** Statuses a client may see for what it sent; INTERNAL and UNKNOWN mean a server bug. */
const CLIENT_STATUSES = new Set([
  status.OK,
  status.INVALID_ARGUMENT,
  status.NOT_FOUND,
  status.RESOURCE_EXHAUSTED,
  status.UNIMPLEMENTED,
]);

describe('mutation fuzz: malformed input is refused cleanly, accepted input reads back', () => {
  let server: TestServer;
  let raw: RawFlightClient;
  let dir: string;
  const corpus: { name: string; messages: Message[] }[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'tierflight-fuzz-'));
    execFileSync(PYTHON, [path.join(ROOT, 'test/py/fuzz_corpus.py'), path.join(dir, 'corpus')]);
    for (const file of (await readdir(path.join(dir, 'corpus'))).sort()) {
      corpus.push({ name: file, messages: ipcMessages(await readFile(path.join(dir, 'corpus', file))) });
    }
    server = await startTestServer(`storageTypes:
  memory: { capacity: 256MiB }
  disk_mapped: { path: ${dir}/mapped, capacity: 256MiB }
  disk: { path: ${dir}/disk, capacity: 256MiB }
storageClasses:
  - { name: mem, prefix: fz/mem, tiers: [{ storage: memory }] }
  - { name: mapped, prefix: fz/mapped, tiers: [{ storage: disk_mapped }] }
  - { name: disk, prefix: fz/disk, tiers: [{ storage: disk }] }
`);
    raw = new RawFlightClient(server.location);
  });
  afterAll(async () => {
    raw?.close();
    await server?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it(`survives ${INPUTS} mutated inputs (seed ${SEED})`, async () => {
    const fuzz = new Fuzzer(SEED);
    const accepted = new Map<string, { messages: Message[]; what: string }>();
    const violations: string[] = [];
    const counts = { puts: 0, accepted: 0, rejected: 0, tickets: 0, descriptors: 0, actions: 0 };
    const check = (what: string, out: CallOutcome): void => {
      if (!CLIENT_STATUSES.has(out.code)) violations.push(`${what}: status ${out.code} ${out.details}`);
    };
    const classes = ['mem', 'mapped', 'disk'];

    for (let i = 0; i < INPUTS; i++) {
      const roll = fuzz.int(10);
      if (roll < 7) {
        counts.puts++;
        const seed = fuzz.pick(corpus);
        let messages = seed.messages;
        const whats: string[] = [seed.name];
        const mutations = fuzz.chance(0.05) ? 0 : 1 + (fuzz.chance(0.3) ? 1 + fuzz.int(2) : 0);
        for (let k = 0; k < mutations; k++) {
          const m = fuzz.mutate(messages, seed.name.startsWith('compressed'));
          messages = m.messages;
          whats.push(m.what);
        }
        const flightPath = `fz/${fuzz.pick(classes)}/${i}`;
        const frames = messages.map((m, k) =>
          flightData({
            ...(k === 0 ? { descriptor: { type: 'PATH' as const, path: [flightPath] } } : {}),
            header: m.header,
            body: m.body,
            appMetadata: Buffer.from(`${i}:${k}`),
          }),
        );
        const out = await raw.doPut(frames);
        const what = `put ${flightPath} (${whats.join('; ')})`;
        check(what, out);
        if (mutations === 0 && out.code !== status.OK)
          violations.push(`${what}: a valid stream was refused: ${out.details}`);
        if (out.code === status.OK) {
          counts.accepted++;
          accepted.set(flightPath, { messages, what });
        } else {
          counts.rejected++;
          if (server.app.manager.list(flightPath).length > 0) violations.push(`${what}: refused but visible`);
        }
      } else if (roll === 7) {
        counts.tickets++;
        const ticket = fuzz.ticket([...accepted.keys()]);
        const out = await raw.serverStream('DoGet', encodeRequest.ticket(ticket));
        check(`DoGet ticket ${JSON.stringify(ticket.toString('latin1').slice(0, 80))}`, out);
      } else if (roll === 8) {
        counts.descriptors++;
        const d = fuzz.chance(0.8)
          ? { type: 'PATH' as const, path: fuzz.junkPath() }
          : { type: 'CMD' as const, cmd: fuzz.bytes(fuzz.int(16)) };
        const method = fuzz.pick(['GetFlightInfo', 'GetSchema', 'PollFlightInfo']);
        check(`${method} ${JSON.stringify(d).slice(0, 80)}`, await raw.unary(method, encodeRequest.descriptor(d)));
      } else {
        counts.actions++;
        const a = fuzz.action();
        const out = await raw.serverStream('DoAction', encodeRequest.action(a.type, a.body));
        check(`DoAction ${a.type} ${JSON.stringify(a.body.toString('latin1').slice(0, 60))}`, out);
      }
    }

    // Every accepted flight is replayed exactly as sent...
    for (const [flightPath, { messages, what }] of accepted) {
      const out = await raw.serverStream('DoGet', encodeRequest.ticket(Buffer.from(flightPath)));
      const got = out.results.map(decodeFlightData).map((m) => ({ header: m.header, body: m.body }));
      const sent = messages.filter((m) => m.header.length > 0);
      const same =
        out.code === status.OK &&
        got.length === sent.length &&
        got.every((m, k) => m.header.equals(sent[k]!.header) && m.body.equals(sent[k]!.body));
      if (!same) violations.push(`${what}: DoGet did not replay what was accepted (${out.code} ${out.details})`);
    }
    // ...and pyarrow reads and validates it.
    const list = path.join(dir, 'accepted.json');
    await writeFile(list, JSON.stringify([...accepted.keys()]));
    const readBack = await runPyClient<{ read: number; failures: Record<string, { message: string }> }>(
      'read-back',
      server.location,
      ['--script', list],
    );
    for (const [p, f] of Object.entries(readBack.failures)) {
      violations.push(`${accepted.get(p)?.what}: pyarrow cannot read it back: ${f.message}`);
      if (process.env.TIERFLIGHT_FUZZ_DUMP)
        await dumpStream(process.env.TIERFLIGHT_FUZZ_DUMP, p, accepted.get(p)!.messages);
    }

    // The server still serves, and accounting is back where it started once the flights go.
    const again = await raw.doPut([
      flightData({ descriptor: { type: 'PATH', path: ['fz/mem/after'] }, ...corpus[0]!.messages[0]! }),
      ...corpus[0]!.messages.slice(1).map((m) => flightData(m)),
    ]);
    expect(again.code).toBe(status.OK);
    server.app.manager.deletePrefix('fz');
    await server.app.manager.idle();
    server.app.manager.checkAccounting();
    const stats = server.app.manager.stats();
    expect(stats.putsInProgress).toBe(0);
    for (const type of Object.values(stats.storageTypes)) expect(type.used).toBe(0);

    const summary = { seed: SEED, inputs: INPUTS, ...counts, violations: violations.length };
    process.stdout.write(`fuzz: ${JSON.stringify(summary)}\n`);
    expect(violations.slice(0, 20)).toEqual([]);
    expect(counts.accepted).toBeGreaterThan(0);
    expect(counts.rejected).toBeGreaterThan(counts.puts / 4);
  });
});
