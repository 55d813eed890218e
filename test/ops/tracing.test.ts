import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TIERFLIGHT_CLI } from '../helpers/cli.js';
import { startOtlpReceiver, type ReceivedSpan } from '../helpers/otlp.js';
import { runPyClient } from '../helpers/python.js';
import { startRedis, type RedisServer } from '../helpers/redis.js';
import { freePort } from '../helpers/server.js';
import { ROOT } from '../setup/python-env.js';

/**
 * OpenTelemetry traces from outside (README "Traces"): real servers started with the
 * standard OTEL_* variables export to an OTLP receiver the suite runs; a pyarrow
 * application's trace context (the `traceparent` header) is continued by the server's
 * spans, what a call waits on is a child span, and a put forwarded in a cluster has spans on
 * both nodes, in one trace.
 */
const dir = mkdtempSync(path.join(tmpdir(), 'tierflight-tracing-'));

interface Server {
  child: ChildProcess;
  location: string;
  ready: Record<string, unknown>;
  output: () => string;
  stop(): Promise<void>;
}

async function serve(name: string, yaml: string, env: Record<string, string>): Promise<Server> {
  const file = path.join(dir, `${name}.yaml`);
  writeFileSync(file, yaml);
  const [node, ...cli] = TIERFLIGHT_CLI as [string, ...string[]];
  const child = spawn(node, [...cli, 'serve', '--config', file], { cwd: ROOT, env: { ...process.env, ...env } });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const ready = await new Promise<Record<string, unknown>>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} not ready:\n${out}`)), 60_000);
    const look = (): void => {
      const line = out.split('\n').find((l) => l.includes('"msg":"Tierflight ready"'));
      if (line) {
        clearTimeout(timer);
        resolve(JSON.parse(line) as Record<string, unknown>);
      }
    };
    child.stdout.on('data', look);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited ${code}:\n${out}`));
    });
  });
  child.removeAllListeners('exit');
  const listen = /listen: (\S+)/.exec(yaml)![1];
  return {
    child,
    location: `grpc://${listen}`,
    ready,
    output: () => out,
    stop: async () => {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    },
  };
}

const hex = (bytes: number) => randomBytes(bytes).toString('hex');

/** Resolves once `pick()` finds what it looks for among the spans received (or fails naming what came). */
async function until<T>(spans: ReceivedSpan[], pick: () => T | undefined, what: string): Promise<T> {
  for (let i = 0; i < 300; i++) {
    const found = pick();
    if (found !== undefined) return found;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no ${what} among ${spans.length} spans: ${spans.map((s) => s.name).join(', ')}`);
}

const FLIGHT = 'arrow.flight.protocol.FlightService';
const SERVER = 2;
const CLIENT = 3;

describe('traces', () => {
  let receiver: Awaited<ReturnType<typeof startOtlpReceiver>>;
  beforeAll(async () => {
    receiver = await startOtlpReceiver();
  });
  afterAll(async () => {
    await receiver?.stop();
  });

  it("continue a pyarrow call's trace: a span per call with what it moved, children for what it waits on", async () => {
    const port = await freePort();
    const yaml =
      `server: { listen: 127.0.0.1:${port} }\n` +
      `storageTypes:\n  memory: { capacity: 64MiB }\n` +
      `durableStores:\n  - { id: local, type: filesystem, path: ${dir}/durable }\n` +
      `storageClasses:\n` +
      `  - { name: strong, prefix: strong, durability: strong, durableStore: local, tiers: [{ storage: memory }] }\n` +
      `  - { name: cache, prefix: "", tiers: [{ storage: memory }] }\n`;
    const env = {
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_BSP_SCHEDULE_DELAY: '100',
      OTEL_SERVICE_NAME: 'tierflight-under-test',
    };
    let server = await serve('one', yaml, env);
    try {
      expect(server.ready.traces).toBe(`otlp http/json to ${receiver.endpoint}`);
      for (const p of ['cache/t', 'strong/t']) {
        const traceId = hex(16);
        const parent = hex(8);
        const out = await runPyClient<{ rows: number; equal: boolean }>('traced', server.location, [
          '--path',
          p,
          '--script',
          JSON.stringify({ traceparent: `00-${traceId}-${parent}-01`, tracestate: 'app=pyarrow' }),
        ]);
        expect(out).toMatchObject({ rows: 10_000, equal: true });
        const inTrace = () => receiver.spans.filter((s) => s.traceId === traceId);
        const call = (method: string) => inTrace().find((s) => s.name === `${FLIGHT}/${method}`);
        const [put, info, get] = await until(
          receiver.spans,
          () => {
            const all = ['DoPut', 'GetFlightInfo', 'DoGet'].map(call);
            return all.every(Boolean) ? (all as ReceivedSpan[]) : undefined;
          },
          `DoPut, GetFlightInfo and DoGet spans in trace ${traceId}`,
        );
        // Each call is a server span whose parent is the application's span.
        for (const s of [put!, info!, get!]) {
          expect(s).toMatchObject({ kind: SERVER, parentSpanId: parent });
          expect(s.attributes).toMatchObject({
            'rpc.system': 'grpc',
            'rpc.service': FLIGHT,
            'rpc.grpc.status_code': 0,
            'tierflight.status': 'OK',
          });
          expect(s.resource).toMatchObject({ 'service.name': 'tierflight-under-test' });
        }
        const cls = p.startsWith('strong') ? 'strong' : 'cache';
        expect(put!.attributes).toMatchObject({
          'rpc.method': 'DoPut',
          'tierflight.path': p,
          'tierflight.class': cls,
          'tierflight.records': 10_000,
          'tierflight.batches': 4,
        });
        expect(put!.attributes['tierflight.bytes']).toBeGreaterThan(100_000);
        expect(get!.attributes).toMatchObject({
          'tierflight.path': p,
          'tierflight.class': cls,
          'tierflight.batches': 4,
        });
        expect(get!.attributes['tierflight.bytes']).toBeGreaterThan(100_000);
        // A strong put waits for the durable store: a child span of its DoPut.
        const durable = inTrace().filter((s) => s.name === 'durable put');
        if (cls === 'strong') {
          expect(durable).toHaveLength(1);
          expect(durable[0]).toMatchObject({ parentSpanId: put!.spanId, attributes: { 'tierflight.store': 'local' } });
        } else {
          expect(durable).toEqual([]);
        }
      }
      // A call without trace context starts a trace of its own.
      await runPyClient('ops', server.location, ['--script', JSON.stringify([{ op: 'info', path: 'cache/none' }])]);
      const lone = await until(
        receiver.spans,
        () =>
          receiver.spans.find(
            (s) => s.name === `${FLIGHT}/GetFlightInfo` && s.attributes['tierflight.status'] === 'NOT_FOUND',
          ),
        'a NOT_FOUND GetFlightInfo span',
      );
      expect(lone.parentSpanId ?? '').toBe('');
      expect(lone.status).toMatchObject({ code: 2 }); // ERROR

      // After a restart the strong flights are only in the store: a read restores one (a
      // child span, with the store's reads under it), a prefetch job's items are spans too.
      await runPyClient('traced', server.location, ['--path', 'strong/u/x', '--script', '{}']);
      await server.stop();
      server = await serve('one', yaml, env);
      const readTrace = hex(16);
      await runPyClient('traced', server.location, [
        '--path',
        'strong/t',
        '--script',
        JSON.stringify({ traceparent: `00-${readTrace}-${hex(8)}-01`, _mode: 'get' }),
      ]);
      const restore = await until(
        receiver.spans,
        () => receiver.spans.find((s) => s.traceId === readTrace && s.name === 'restore'),
        'a restore span',
      );
      const calls = receiver.spans.filter((s) => s.traceId === readTrace && s.kind === SERVER).map((s) => s.spanId);
      expect(calls).toContain(restore.parentSpanId);
      expect(restore.attributes).toMatchObject({ 'tierflight.path': 'strong/t' });
      await until(
        receiver.spans,
        () => receiver.spans.find((s) => s.name === 'durable get' && s.parentSpanId === restore.spanId),
        'a durable get under the restore',
      );
      const jobTrace = hex(16);
      await runPyClient('traced', server.location, [
        '--script',
        JSON.stringify({
          traceparent: `00-${jobTrace}-${hex(8)}-01`,
          _action: { type: 'prefetch', body: { prefix: 'strong/u' } },
        }),
      ]);
      const action = await until(
        receiver.spans,
        () => receiver.spans.find((s) => s.traceId === jobTrace && s.name === `${FLIGHT}/DoAction`),
        'the prefetch DoAction span',
      );
      const item = await until(
        receiver.spans,
        () => receiver.spans.find((s) => s.traceId === jobTrace && s.name === 'job prefetch item'),
        'a prefetch item span',
      );
      expect(item).toMatchObject({ parentSpanId: action.spanId, attributes: { 'tierflight.path': 'strong/u/x' } });
    } finally {
      await server.stop();
    }
  });

  it('are off unless configured; the default protocol is OTLP protobuf; a bad setting stops the start', async () => {
    const yaml = async () =>
      `server: { listen: 127.0.0.1:${await freePort()} }\nstorageTypes:\n  memory: { capacity: 8MiB }\nstorageClasses:\n  - { name: all, prefix: "", tiers: [{ storage: memory }] }\n`;
    const off = await serve('off', await yaml(), {});
    try {
      expect(off.ready.traces).toBe('off');
      expect(off.output()).not.toContain('tracing on');
    } finally {
      await off.stop();
    }
    const protobuf = await serve('protobuf', await yaml(), {
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
      OTEL_BSP_SCHEDULE_DELAY: '100',
    });
    try {
      expect(protobuf.ready.traces).toBe(`otlp http/protobuf to ${receiver.endpoint}`);
      const traceId = hex(16);
      await runPyClient('traced', protobuf.location, [
        '--path',
        'p/t',
        '--script',
        JSON.stringify({ traceparent: `00-${traceId}-${hex(8)}-01` }),
      ]);
      // The trace id's 16 bytes are in a protobuf export.
      await until(
        receiver.spans,
        () => receiver.protobuf.find((b) => b.includes(Buffer.from(traceId, 'hex'))),
        'protobuf export with the trace id',
      );
    } finally {
      await protobuf.stop();
    }
    const bad = await serve('bad', await yaml(), {
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
      OTEL_TRACES_SAMPLER: 'sometimes',
    }).catch((err: unknown) => err as Error);
    expect(bad).toBeInstanceOf(Error);
    expect((bad as Error).message).toMatch(/exited 1/);
    expect((bad as Error).message).toMatch(/OTEL_TRACES_SAMPLER "sometimes" is not one of always_on/);
  });

  describe('in a cluster', () => {
    let redis: RedisServer;
    beforeAll(async () => {
      redis = await startRedis();
    });
    afterAll(async () => {
      await redis?.stop();
    });

    it('a put forwarded to its owner has spans on both nodes, in the caller’s trace', async () => {
      const ports = { a: await freePort(), b: await freePort() };
      const yaml = (self: 'a' | 'b') =>
        `server: { listen: 127.0.0.1:${ports[self]} }\n` +
        `storageTypes:\n  memory: { capacity: 64MiB }\n` +
        `storageClasses:\n  - { name: all, prefix: "", tiers: [{ storage: memory }] }\n` +
        `reservations:\n  store: { type: redis, url: "${redis.url}" }\n` +
        `cluster:\n  self: ${self}\n  probeEvery: 200ms\n  members:\n` +
        `    - { name: a, location: "grpc+tcp://127.0.0.1:${ports.a}" }\n` +
        `    - { name: b, location: "grpc+tcp://127.0.0.1:${ports.b}" }\n`;
      const env = {
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
        OTEL_BSP_SCHEDULE_DELAY: '100',
      };
      const [a, b] = await Promise.all([serve('a', yaml('a'), env), serve('b', yaml('b'), env)]);
      try {
        // As an operator would, wait until a sees b up (b may have been down when a started).
        for (let i = 0; i < 100; i++) {
          const [answer] = await runPyClient<{ members: { name: string; state: string }[] }[][]>('ops', a.location, [
            '--script',
            JSON.stringify([{ op: 'action', type: 'cluster' }]),
          ]);
          if (answer?.[0]?.members.find((m) => m.name === 'b')?.state === 'up') break;
          await new Promise((r) => setTimeout(r, 100));
        }
        // Paths through node a until one is owned by b (each path is placed by rendezvous hashing).
        let forwarded: { traceId: string; put: ReceivedSpan } | undefined;
        for (let i = 0; i < 16 && !forwarded; i++) {
          const traceId = hex(16);
          await runPyClient('traced', a.location, [
            '--path',
            `c/${i}`,
            '--script',
            JSON.stringify({ traceparent: `00-${traceId}-${hex(8)}-01` }),
          ]);
          const put = await until(
            receiver.spans,
            () => receiver.spans.find((s) => s.traceId === traceId && s.name === `${FLIGHT}/DoPut`),
            'the DoPut span on node a',
          );
          if (put.attributes['tierflight.forwarded_to'] === 'b') forwarded = { traceId, put };
        }
        expect(forwarded).toBeDefined();
        const { traceId, put } = forwarded!;
        expect(put.resource).toMatchObject({ 'service.instance.id': 'a' });
        // On a: the client span of the call to b, child of a's DoPut.
        const client = await until(
          receiver.spans,
          () => receiver.spans.find((s) => s.traceId === traceId && s.name === 'cluster DoPut'),
          'a cluster DoPut span',
        );
        expect(client).toMatchObject({
          kind: CLIENT,
          parentSpanId: put.spanId,
          attributes: { 'tierflight.member': 'b' },
          resource: { 'service.instance.id': 'a' },
        });
        // On b: the DoPut that stored it, child of a's client span, with what it stored.
        const stored = await until(
          receiver.spans,
          () =>
            receiver.spans.find(
              (s) => s.traceId === traceId && s.name === `${FLIGHT}/DoPut` && s.resource['service.instance.id'] === 'b',
            ),
          "b's DoPut span",
        );
        expect(stored).toMatchObject({ kind: SERVER, parentSpanId: client.spanId });
        expect(stored.attributes).toMatchObject({ 'tierflight.records': 10_000, 'tierflight.batches': 4 });
      } finally {
        await Promise.all([a.stop(), b.stop()]);
      }
    });
  });
});
