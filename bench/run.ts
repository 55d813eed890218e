/**
 * `npm run bench`: Tierflight against pyarrow's own Flight server, side by side in one
 * run, driven by the same pyarrow client. Prints Tierflight/reference ratios and writes
 * bench/results/latest.json. Needs the test virtualenv (`npm test` creates it).
 *
 * 1. DoPut/DoGet GB/s of a large table and small put+get ops/s (memory tier).
 * 2. DoGet GB/s of the same table from each storage type (memory, disk_mapped, disk); then
 *    DoPuts and DoGets of it on both servers through one client taking turns, after three
 *    warm-up puts on each (the fair comparison: the client's state, and whether a server's
 *    allocator has memory to reuse yet, move a block's figures more than the servers do).
 * 3. A Zipf-skewed read workload over a working set three times the memory capacity:
 *    throughput and the share of reads each tier served.
 * 4. DoPut/DoGet GB/s of the large table over TLS, against pyarrow's server over TLS
 *    (certificates made with openssl for the run).
 * 5. Durability against moto_server.
 * 6. The data path (issue 27): a DoPut to the disk tier against `dd` of the same size into
 *    the same folder, into the page cache and to the disk (a sync after each); a DoPut with
 *    `config/default.yaml`'s classes (it crosses the memory tier's maxFlightSize and spills)
 *    against pyarrow's DoPut, both servers fresh and then both warm taking turns; a projection of 2 of the 8 columns against a full DoGet;
 *    server CPU seconds per GB put and got on each server (measured in block 2's turns).
 */
import { execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { startMoto } from '../test/helpers/moto.js';
import { makeTestCerts } from '../test/helpers/certs.js';
import { ROOT } from '../test/setup/python-env.js';
import setupPython from '../test/setup/python-env.js';
import { py, startReference, startTierflight as startTierflightIn } from './processes.js';

const MIB = Number(process.env.BENCH_MIB ?? 512);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const SMALL_OPS = Number(process.env.BENCH_SMALL_OPS ?? 2000);
const ZIPF_FLIGHTS = Number(process.env.BENCH_ZIPF_FLIGHTS ?? 96); // × 8 MiB = 3 × the 256 MiB memory tier
const ZIPF_GETS = Number(process.env.BENCH_ZIPF_GETS ?? 1500);
const DURABLE_MIB = Number(process.env.BENCH_DURABLE_MIB ?? 256);
const DURABLE_ROUNDS = Number(process.env.BENCH_DURABLE_ROUNDS ?? 2);
const DISK_MIB = Number(process.env.BENCH_DISK_MIB ?? 300);
const DEFAULT_MIB = Number(process.env.BENCH_DEFAULT_MIB ?? 256);
const ALTERNATING_ROUNDS = Number(process.env.BENCH_ALTERNATING_ROUNDS ?? 8);
const ALTERNATING_WARM = Number(process.env.BENCH_ALTERNATING_WARM ?? 3);

interface Result {
  bytes: number;
  put_gbps: number;
  put_gbps_median: number;
  get_gbps: number;
  get_gbps_median: number;
  small_ops_per_s: number;
  small_ops_per_s_warm: number;
}
interface AlternatingResult {
  put_gbps: number;
  put_gbps_median: number;
  put_client_cpu_s_per_gb: number;
  put_server_cpu_s_per_gb: number;
  get_server_cpu_s_per_gb: number;
  get_gbps: number;
  get_gbps_median: number;
  get_client_cpu_s_per_gb: number;
}
/**
 * DoPut and DoGet of a `mib` table on Tierflight and pyarrow's server through one client,
 * taking turns after the warm-up puts (bench/client.py `alternating`); `ca` for TLS.
 */
function takingTurns(
  tierflight: { location: string; pid: number | undefined },
  reference: { location: string; pid: number | undefined },
  mib: number,
  ca = '-',
): [AlternatingResult, AlternatingResult] {
  return py<AlternatingResult[]>(
    'alternating',
    `${tierflight.location},${reference.location}`,
    mib,
    ALTERNATING_ROUNDS,
    ALTERNATING_WARM,
    ca,
    `${tierflight.pid},${reference.pid}`,
  ) as [AlternatingResult, AlternatingResult];
}
type TierResult = Record<string, { get_gbps: number; get_gbps_median: number }>;
interface PutResult {
  put_gbps: number;
  put_gbps_median: number;
}
interface ProjectionResult {
  full_seconds: number;
  projected_seconds: number;
  full_bytes: number;
  projected_bytes: number;
}
/**
 * The large table over TLS on Tierflight and on pyarrow's server, each with the suite's
 * kind of certificates, through one client taking turns as the plaintext block does.
 */
async function benchTls(
  children: ChildProcess[],
): Promise<{ tierflight: AlternatingResult; reference: AlternatingResult }> {
  const certs = makeTestCerts([]);
  try {
    const tf = await startTierflight('tls.yaml', { CERT: certs.serverCert, KEY: certs.serverKey });
    children.push(tf.child);
    const reference = await startReference({ cert: certs.serverCert, key: certs.serverKey });
    children.push(reference.child);
    const [tierflight, ref] = takingTurns(
      { location: tf.location.replace('grpc://', 'grpc+tls://'), pid: tf.child.pid },
      { location: reference.location, pid: reference.child.pid },
      MIB,
      certs.ca,
    );
    tf.child.kill('SIGTERM');
    reference.child.kill('SIGTERM');
    return { tierflight, reference: ref };
  } finally {
    rmSync(certs.dir, { recursive: true, force: true });
  }
}

interface ZipfResult {
  gbps: number;
  gets_per_s: number;
}

/** As `npm start` runs the server (see README, "Running it"). */
const data = mkdtempSync(path.join(os.tmpdir(), 'tierflight-bench-'));
const startTierflight = (template: string, vars: Record<string, string> = {}) =>
  startTierflightIn(data, template, vars);

async function hitsByStorage(metricsUrl: string): Promise<Record<string, number>> {
  const text = await (await fetch(metricsUrl)).text();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^tierflight_hits_total\{[^}]*storage="([^"]+)"[^}]*\} (\S+)$/gm)) {
    out[m[1] as string] = (out[m[1] as string] ?? 0) + Number(m[2]);
  }
  return out;
}

const fmt = (name: string, a: number, b: number, digits = 3): string =>
  `${name.padEnd(34)}${a.toFixed(digits).padStart(12)}${b.toFixed(digits).padStart(12)}${(a / b).toFixed(2).padStart(8)}`;

/**
 * Strong put against a raw lib-storage Upload of the same bytes to the same server, weak put
 * against a memory-only put, and a restore DoGet against a raw GetObject of the object.
 */
async function benchDurability() {
  const moto = await startMoto();
  const bucket = 'tierflight-bench';
  await moto.createBucket(bucket);
  const vars = { ENDPOINT: moto.endpoint };
  let server = await startTierflight('durable.yaml', vars);
  try {
    const puts = py<{ bytes: number } & Record<'mem' | 'weak' | 'strong', { put_s: number }>>(
      'durable-puts',
      server.location,
      DURABLE_MIB,
      DURABLE_ROUNDS,
    );
    // Let the weak uploads land, then restart: the flights are only in the store.
    for (let i = 0; i < 600; i++) {
      const text = await (await fetch(server.metrics)).text();
      if (/^tierflight_durable_queue_depth 0$/m.test(text)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    server.child.kill('SIGTERM');
    await new Promise((r) => server.child.once('exit', r));
    server = await startTierflight('durable.yaml', vars);
    const restored = py<{ get_s: number }>('durable-get', server.location, 'strong/x');

    // The baselines: the same object bytes straight through the SDK.
    let start = performance.now();
    const got = await moto.client.send(new GetObjectCommand({ Bucket: bucket, Key: 'b/strong/x' }));
    const bytes = Buffer.from(
      await (got.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray(),
    );
    const rawGet = (performance.now() - start) / 1000;
    let rawUpload = Infinity;
    for (let r = 0; r < DURABLE_ROUNDS; r++) {
      start = performance.now();
      await new Upload({
        client: moto.client,
        params: { Bucket: bucket, Key: 'raw/x', Body: bytes },
        partSize: 8 * 1024 * 1024,
        queueSize: 4,
      }).done();
      rawUpload = Math.min(rawUpload, (performance.now() - start) / 1000);
    }
    return {
      bytes: puts.bytes,
      objectBytes: bytes.length,
      memPut: puts.mem.put_s,
      weakPut: puts.weak.put_s,
      strongPut: puts.strong.put_s,
      rawUpload,
      restoreGbps: puts.bytes / restored.get_s / 1e9,
      rawGetGbps: bytes.length / rawGet / 1e9,
    };
  } finally {
    server.child.kill('SIGKILL');
    await moto.stop();
  }
}

/**
 * `dd` of `mib` MiB into `folder`, overwriting one file as a replaced flight does: best
 * seconds of `rounds`, into the page cache (plain) and to the disk (`conv=fdatasync`, how
 * a disk's write speed is usually measured). Each round starts with a sync, as put-disk's do.
 */
function ddSeconds(folder: string, mib: number, rounds: number): { cache: number; disk: number } {
  const best = { cache: Infinity, disk: Infinity };
  for (const [kind, extra] of [
    ['cache', []],
    ['disk', ['conv=fdatasync']],
  ] as const) {
    for (let r = 0; r < rounds; r++) {
      execFileSync('sync');
      const start = performance.now();
      execFileSync(
        'dd',
        ['if=/dev/zero', `of=${path.join(folder, 'dd.bin')}`, 'bs=4M', `count=${Math.ceil(mib / 4)}`, ...extra],
        { stdio: 'ignore' },
      );
      best[kind] = Math.min(best[kind], (performance.now() - start) / 1000);
    }
  }
  rmSync(path.join(folder, 'dd.bin'), { force: true });
  return best;
}

/**
 * Block 6, on the bench.yaml server (`tf`), then a default-config server against a pyarrow
 * server started with it: both fresh for the one-client puts, both warm taking turns.
 */
async function benchDataPath(tf: { location: string; child: ChildProcess }, children: ChildProcess[]) {
  const disk = py<PutResult & { bytes: number; disk_gbps: number }>(
    'put-disk',
    tf.location,
    'tier/disk/put',
    DISK_MIB,
    ROUNDS,
  );
  const ddBest = ddSeconds(path.join(data, 'disk'), DISK_MIB, ROUNDS);
  const dd = disk.bytes / ddBest.cache / 1e9;
  const ddDisk = disk.bytes / ddBest.disk / 1e9;
  const projection = py<ProjectionResult>('projection', tf.location, MIB, ROUNDS, 'i0,f3');
  // The earlier blocks' tier files are written back first: this block's disk writes do not
  // queue behind gigabytes of someone else's dirty pages.
  execFileSync('sync');
  const reference = await startReference();
  children.push(reference.child);
  const server = await startTierflight('default.yaml');
  try {
    const ref = py<PutResult>('put-path', reference.location, 'bench/default', DEFAULT_MIB, ROUNDS);
    const spilled = py<PutResult>('put-path', server.location, 'bench/default', DEFAULT_MIB, ROUNDS);
    // The same puts taking turns, both servers past their warm-up puts.
    const [spilledTurns, refTurns] = takingTurns(
      { location: server.location, pid: server.child.pid },
      { location: reference.location, pid: reference.child.pid },
      DEFAULT_MIB,
    );
    return { disk, dd, ddDisk, projection, spilled, ref, spilledTurns, refTurns };
  } finally {
    server.child.kill('SIGKILL');
    reference.child.kill('SIGKILL');
  }
}

async function main(): Promise<void> {
  setupPython();
  if (!existsSync(path.join(ROOT, 'dist/cli/main.js'))) throw new Error('run `npm run build` first');
  const reference = await startReference();
  const refLocation = reference.location;
  const children: ChildProcess[] = [reference.child];
  try {
    const tf = await startTierflight('bench.yaml');
    children.push(tf.child);
    const main = py<Result>(tf.location, MIB, ROUNDS, SMALL_OPS);
    const ref = py<Result>(refLocation, MIB, ROUNDS, SMALL_OPS);
    const tiers = py<TierResult>('tiers', tf.location, MIB, ROUNDS, 'mem,tier/disk_mapped,tier/disk');
    const [alternating, alternatingRef] = takingTurns(
      { location: tf.location, pid: tf.child.pid },
      { location: refLocation, pid: reference.child.pid },
      MIB,
    );
    const dataPath = await benchDataPath(tf, children);
    tf.child.kill('SIGTERM');

    const zipfServer = await startTierflight('zipf.yaml');
    children.push(zipfServer.child);
    const zipf = py<ZipfResult>('zipf', zipfServer.location, ZIPF_FLIGHTS, 8, ZIPF_GETS);
    const hits = await hitsByStorage(zipfServer.metrics);
    const zipfRef = py<ZipfResult>('zipf', refLocation, ZIPF_FLIGHTS, 8, ZIPF_GETS);
    const totalHits = Object.values(hits).reduce((a, b) => a + b, 0);
    const hitRatio = Object.fromEntries(Object.entries(hits).map(([k, v]) => [k, v / totalHits]));

    zipfServer.child.kill('SIGTERM');

    const tls = await benchTls(children);
    const durable = await benchDurability();

    const rows = [
      ['DoPut GB/s (best)', main.put_gbps, ref.put_gbps],
      ['DoPut GB/s (median)', main.put_gbps_median, ref.put_gbps_median],
      ['DoGet GB/s (best)', main.get_gbps, ref.get_gbps],
      ['DoGet GB/s (median)', main.get_gbps_median, ref.get_gbps_median],
      ['10 KiB put+get ops/s (cold)', main.small_ops_per_s, ref.small_ops_per_s],
      ['10 KiB put+get ops/s (warm)', main.small_ops_per_s_warm, ref.small_ops_per_s_warm],
      ['DoGet GB/s memory (best)', tiers.mem?.get_gbps ?? 0, ref.get_gbps],
      ['DoGet GB/s disk_mapped (best)', tiers['tier/disk_mapped']?.get_gbps ?? 0, ref.get_gbps],
      ['DoGet GB/s disk (best)', tiers['tier/disk']?.get_gbps ?? 0, ref.get_gbps],
      ['Zipf DoGet GB/s (3x memory)', zipf.gbps, zipfRef.gbps],
      ['DoPut GB/s taking turns (best)', alternating.put_gbps, alternatingRef.put_gbps],
      ['DoPut GB/s taking turns (median)', alternating.put_gbps_median, alternatingRef.put_gbps_median],
      [
        'client CPU s/GB, DoPut taking turns',
        alternating.put_client_cpu_s_per_gb,
        alternatingRef.put_client_cpu_s_per_gb,
      ],
      ['DoGet GB/s taking turns (best)', alternating.get_gbps, alternatingRef.get_gbps],
      ['DoGet GB/s taking turns (median)', alternating.get_gbps_median, alternatingRef.get_gbps_median],
      [
        'client CPU s/GB, DoGet taking turns',
        alternating.get_client_cpu_s_per_gb,
        alternatingRef.get_client_cpu_s_per_gb,
      ],
    ] as const;
    const memoryGet = tiers.mem?.get_gbps ?? 1;
    const lines = [
      `Tierflight vs pyarrow Flight server: ${MIB} MiB table in 64Ki-row batches, best/median of ${ROUNDS}; ` +
        `${SMALL_OPS} small put+get pairs twice (cold, warm); Zipf: ${ZIPF_GETS} gets over ${ZIPF_FLIGHTS} x 8 MiB flights`,
      `${'metric'.padEnd(34)}${'tierflight'.padStart(12)}${'pyarrow'.padStart(12)}${'ratio'.padStart(8)}`,
      ...rows.map(([name, a, b]) => fmt(name, a, b)),
      '',
      `per-tier DoGet vs Tierflight memory: disk_mapped ${((tiers['tier/disk_mapped']?.get_gbps ?? 0) / memoryGet).toFixed(2)}, ` +
        `disk ${((tiers['tier/disk']?.get_gbps ?? 0) / memoryGet).toFixed(2)}`,
      `Zipf reads served by tier: ${Object.entries(hitRatio)
        .map(([k, v]) => `${k} ${(v * 100).toFixed(1)}%`)
        .join(', ')}`,
      '',
      `TLS (${MIB} MiB table through one client taking turns, ${ALTERNATING_ROUNDS} rounds after ${ALTERNATING_WARM} warm-up puts; ` +
        'TLS cost: each server against its own plaintext figure taking turns):',
      `${'metric'.padEnd(34)}${'tierflight'.padStart(12)}${'pyarrow'.padStart(12)}${'ratio'.padStart(8)}`,
      fmt('DoPut GB/s over TLS (best)', tls.tierflight.put_gbps, tls.reference.put_gbps),
      fmt('DoPut GB/s over TLS (median)', tls.tierflight.put_gbps_median, tls.reference.put_gbps_median),
      fmt('DoGet GB/s over TLS (best)', tls.tierflight.get_gbps, tls.reference.get_gbps),
      fmt('DoGet GB/s over TLS (median)', tls.tierflight.get_gbps_median, tls.reference.get_gbps_median),
      fmt(
        'server CPU s/GB put over TLS',
        tls.tierflight.put_server_cpu_s_per_gb,
        tls.reference.put_server_cpu_s_per_gb,
      ),
      fmt(
        'server CPU s/GB get over TLS',
        tls.tierflight.get_server_cpu_s_per_gb,
        tls.reference.get_server_cpu_s_per_gb,
      ),
      `TLS cost: Tierflight DoPut ${(tls.tierflight.put_gbps / alternating.put_gbps).toFixed(2)}, DoGet ${(tls.tierflight.get_gbps / alternating.get_gbps).toFixed(2)}; ` +
        `pyarrow DoPut ${(tls.reference.put_gbps / alternatingRef.put_gbps).toFixed(2)}, DoGet ${(tls.reference.get_gbps / alternatingRef.get_gbps).toFixed(2)} (TLS / plaintext, best)`,
      '',
      `Durability (${DURABLE_MIB} MiB flight, moto_server on loopback, best of ${DURABLE_ROUNDS}):`,
      `${'metric'.padEnd(34)}${'tierflight'.padStart(12)}${'baseline'.padStart(12)}${'ratio'.padStart(8)}`,
      fmt('strong put s vs raw Upload s', durable.strongPut, durable.rawUpload),
      fmt('weak put s vs memory-only put s', durable.weakPut, durable.memPut),
      fmt('restore DoGet GB/s vs GetObject', durable.restoreGbps, durable.rawGetGbps),
      '',
      `Data path (disk tier ${DISK_MIB} MiB, default config ${DEFAULT_MIB} MiB, projection and CPU ${MIB} MiB; best of ${ROUNDS}):`,
      `${'metric'.padEnd(34)}${'tierflight'.padStart(12)}${'baseline'.padStart(12)}${'ratio'.padStart(8)}`,
      fmt('DoPut GB/s to disk vs dd', dataPath.disk.put_gbps, dataPath.dd),
      fmt('DoPut+sync GB/s vs dd fdatasync', dataPath.disk.disk_gbps, dataPath.ddDisk),
      fmt('DoPut GB/s default config, both fresh', dataPath.spilled.put_gbps, dataPath.ref.put_gbps),
      fmt('the same taking turns (median)', dataPath.spilledTurns.put_gbps_median, dataPath.refTurns.put_gbps_median),
      fmt(
        'server CPU s/GB put, default config',
        dataPath.spilledTurns.put_server_cpu_s_per_gb,
        dataPath.refTurns.put_server_cpu_s_per_gb,
      ),
      fmt('projection 2/8 s vs full DoGet s', dataPath.projection.projected_seconds, dataPath.projection.full_seconds),
      fmt(
        'server CPU s/GB put, taking turns',
        alternating.put_server_cpu_s_per_gb,
        alternatingRef.put_server_cpu_s_per_gb,
      ),
      fmt(
        'server CPU s/GB get, taking turns',
        alternating.get_server_cpu_s_per_gb,
        alternatingRef.get_server_cpu_s_per_gb,
      ),
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
    const json = {
      date: new Date().toISOString(),
      command: 'npm run bench',
      params: { mib: MIB, rounds: ROUNDS, smallOps: SMALL_OPS, zipfFlights: ZIPF_FLIGHTS, zipfGets: ZIPF_GETS },
      tierflight: main,
      reference: ref,
      tiers,
      alternating: { tierflight: alternating, reference: alternatingRef },
      zipf: { tierflight: zipf, reference: zipfRef, hitRatioByStorage: hitRatio },
      tls,
      durable,
      dataPath,
      ratios: Object.fromEntries(rows.map(([name, a, b]) => [name, a / b])),
    };
    writeFileSync(path.join(ROOT, 'bench/results/latest.json'), `${JSON.stringify(json, null, 2)}\n`);
  } finally {
    for (const child of children) child.kill('SIGKILL');
    rmSync(data, { recursive: true, force: true });
  }
}

await main();
