/* eslint-disable @typescript-eslint/no-explicit-any -- manifests are free-form YAML, checked by kubernetes-validate */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { hashPassword } from '../../src/auth/passwords.js';
import { parseDuration, parseSize } from '../../src/config/units.js';
import { TIERFLIGHT_CLI } from '../helpers/cli.js';
import { ROOT, VENV } from '../setup/python-env.js';

/**
 * deploy/kubernetes/ as an operator applies it (README "Kubernetes"): every manifest is valid
 * against the Kubernetes API schemas (kubernetes-validate, strict: no unknown fields), the
 * config in the ConfigMap passes `tierflight validate` with what the pods' environment gives
 * it, and the pieces agree with each other and with the config — names, ports, probes, the
 * grace period against shutdownGrace, and resources against the tiers' capacities.
 */
const DIR = path.join(ROOT, 'deploy/kubernetes');
const EXTRA = path.join(DIR, 'extra');

type Manifest = { kind: string; metadata: { name: string; labels?: Record<string, string> }; [k: string]: unknown };
const manifests: Manifest[] = [DIR, EXTRA]
  .flatMap((d) =>
    readdirSync(d, { withFileTypes: true })
      .filter((e) => e.isFile() && e.name.endsWith('.yaml'))
      .map((e) => path.join(d, e.name)),
  )
  .flatMap((file) => parseAllDocuments(readFileSync(file, 'utf8')).map((doc) => doc.toJS() as Manifest));
const one = <T = Record<string, any>>(kind: string, name: string): T => {
  const found = manifests.filter((m) => m.kind === kind && m.metadata.name === name);
  expect(found, `${kind} ${name}`).toHaveLength(1);
  return found[0] as T;
};

/** A Kubernetes quantity (`3Gi`, `25Gi`, `512Mi`) in bytes. */
function quantity(q: string): number {
  const m = /^(\d+)(Ki|Mi|Gi|Ti)?$/.exec(q);
  if (!m) throw new Error(`not a binary quantity: ${q}`);
  return Number(m[1]) * 1024 ** ['', 'Ki', 'Mi', 'Gi', 'Ti'].indexOf(m[2] ?? '');
}

const statefulSet = one<any>('StatefulSet', 'tierflight');
const pod = statefulSet.spec.template.spec;
const container = pod.containers[0];
const configMap = one<any>('ConfigMap', 'tierflight');
const configText: string = configMap.data['tierflight.yaml'];
const config = parseAllDocuments(configText)[0]!.toJS() as any;
const secret = one<any>('Secret', 'tierflight');

describe('the Kubernetes manifests', () => {
  it('are valid against the Kubernetes 1.37 schemas, strictly', () => {
    const files = [DIR, EXTRA].flatMap((d) =>
      readdirSync(d)
        .filter((f) => f.endsWith('.yaml') && f !== 'servicemonitor.yaml')
        .map((f) => path.join(d, f)),
    );
    const run = spawnSync(path.join(VENV, 'bin', 'kubernetes-validate'), ['--strict', ...files], { encoding: 'utf8' });
    expect(run.status, run.stdout + run.stderr).toBe(0);
    const out = run.stdout + run.stderr;
    expect(out).not.toMatch(/WARN|ERROR/);
    const passed = out.match(/passed for resource/g) ?? [];
    expect(passed).toHaveLength(manifests.filter((m) => m.kind !== 'ServiceMonitor').length);
    // A mistake is caught: the same StatefulSet with a field Kubernetes does not have.
    const broken = path.join(mkdtempSync(path.join(tmpdir(), 'tierflight-k8s-')), 'broken.yaml');
    writeFileSync(
      broken,
      readFileSync(path.join(DIR, 'statefulset.yaml'), 'utf8').replace('serviceName:', 'servicName:'),
    );
    expect(spawnSync(path.join(VENV, 'bin', 'kubernetes-validate'), ['--strict', broken]).status).not.toBe(0);
  });

  it('carry a config that passes `tierflight validate` with what the pods give it', async () => {
    // Every ${NAME} in the config is in the pod's environment: the downward API or the Secret.
    const fromPod = new Set<string>(container.env.map((e: { name: string }) => e.name));
    expect(container.envFrom).toEqual([{ secretRef: { name: secret.metadata.name } }]);
    const fromSecret = new Set(Object.keys(secret.stringData));
    const needed = [...configText.matchAll(/\$\{(\w+)\}/g)].map((m) => m[1] as string);
    expect(needed.length).toBeGreaterThan(4);
    for (const name of needed) expect(fromPod.has(name) || fromSecret.has(name), name).toBe(true);
    expect(fromSecret).toEqual(
      new Set([...needed.filter((n) => !fromPod.has(n)), 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY']),
    );

    const dir = mkdtempSync(path.join(tmpdir(), 'tierflight-k8s-'));
    const file = path.join(dir, 'tierflight.yaml');
    writeFileSync(file, configText);
    const env = {
      ...process.env,
      POD_IP: '10.1.2.3',
      POD_NAMESPACE: 'cache',
      TIERFLIGHT_TOKEN_SECRET: randomBytes(32).toString('base64'),
      TIERFLIGHT_METRICS_TOKEN: randomBytes(16).toString('hex'),
      TIERFLIGHT_ADMIN_PASSWORD_HASH: await hashPassword('a-long-password'),
      TIERFLIGHT_REDIS_URL: 'redis://redis.cache:6379/0',
    };
    const [node, ...cli] = TIERFLIGHT_CLI as [string, ...string[]];
    const out = execFileSync(node, [...cli, 'validate', file], { cwd: ROOT, env, encoding: 'utf8' });
    expect(out).toBe(`${file}: OK (1 storage classes, 0 limit policies)\nspool: /data/spool (server.spool)\n`);
    // Without the Secret's values it is refused, naming them.
    const bare = spawnSync(node, [...cli, 'validate', file], {
      cwd: ROOT,
      env: { ...process.env, POD_IP: '10.1.2.3', POD_NAMESPACE: 'cache' },
      encoding: 'utf8',
    });
    expect(bare.status).toBe(1);
    expect(bare.stdout + bare.stderr).toMatch(/environment variable TIERFLIGHT_TOKEN_SECRET is not set/);
  });

  it('agree with each other and with the config', () => {
    const headless = one<any>('Service', 'tierflight-headless');
    const clients = one<any>('Service', 'tierflight');
    const podLabels = statefulSet.spec.template.metadata.labels;
    // Selectors pick the pods.
    for (const selector of [statefulSet.spec.selector.matchLabels, headless.spec.selector, clients.spec.selector])
      expect(podLabels).toMatchObject(selector);
    expect(one<any>('PodDisruptionBudget', 'tierflight').spec.selector.matchLabels).toEqual(
      statefulSet.spec.selector.matchLabels,
    );
    // Discovery: the headless Service, listing pods before they are ready, on the Flight port.
    expect(statefulSet.spec.serviceName).toBe(headless.metadata.name);
    expect(headless.spec).toMatchObject({ clusterIP: 'None', publishNotReadyAddresses: true });
    expect(config.cluster.discover.dns).toBe(`${headless.metadata.name}.\${POD_NAMESPACE}.svc.cluster.local`);
    expect(config.cluster.self).toBe('${POD_IP}:8815');
    const port = (name: string) =>
      container.ports.find((p: { name: string }) => p.name === name).containerPort as number;
    expect(config.server.listen).toBe(`0.0.0.0:${port('flight')}`);
    expect(config.server.metrics).toBe(`0.0.0.0:${port('metrics')}`);
    expect(config.cluster.discover.port).toBe(port('flight'));
    expect(config.server.advertise).toBe(`grpc+tcp://\${POD_IP}:${port('flight')}`);
    // The config is the one the container runs with.
    const mount = container.volumeMounts.find((m: { name: string }) => m.name === 'config').mountPath;
    expect(container.args).toEqual(['serve', '--config', `${mount}/tierflight.yaml`, '--log-format', 'json']);
    // Probes on the metrics port: alive, and ready (503 while starting and stopping).
    expect(container.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'metrics' });
    expect(container.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'metrics' });
    // The grace period covers the preStop pause and shutdownGrace twice (calls, then weak uploads).
    const preStop = Number(container.lifecycle.preStop.exec.command[1]);
    const grace = parseDuration(config.server.shutdownGrace)! / 1000;
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(preStop + 2 * grace + 10);
    // Memory: the memory tier and 1Gi for the process, requested and capped alike.
    const memory = parseSize(config.storageTypes.memory.capacity)!;
    expect(quantity(container.resources.requests.memory)).toBeGreaterThanOrEqual(memory + 2 ** 30);
    expect(container.resources.limits.memory).toBe(container.resources.requests.memory);
    // The volume holds the disk tier and the spool (up to what the memory tier holds).
    const data = container.volumeMounts.find((m: { name: string }) => m.name === 'data').mountPath;
    expect(config.storageTypes.disk.path.startsWith(`${data}/`)).toBe(true);
    expect(config.server.spool.startsWith(`${data}/`)).toBe(true);
    const claim = statefulSet.spec.volumeClaimTemplates.find((c: any) => c.metadata.name === 'data');
    expect(quantity(claim.spec.resources.requests.storage)).toBeGreaterThanOrEqual(
      parseSize(config.storageTypes.disk.capacity)! + memory,
    );
    // The Prometheus Operator's ServiceMonitor (a custom resource: its schema is not among
    // Kubernetes's) scrapes the headless Service's metrics port with the configured token.
    const monitor = one<any>('ServiceMonitor', 'tierflight');
    expect(headless.metadata.labels).toMatchObject(monitor.spec.selector.matchLabels);
    expect(clients.metadata.labels).not.toMatchObject(monitor.spec.selector.matchLabels);
    expect(headless.spec.ports.map((p: { name: string }) => p.name)).toContain(monitor.spec.endpoints[0].port);
    expect(monitor.spec.endpoints[0].bearerTokenSecret).toEqual({
      name: 'tierflight',
      key: 'TIERFLIGHT_METRICS_TOKEN',
    });
    expect(config.server.metricsToken).toBe('${TIERFLIGHT_METRICS_TOKEN}');
  });
});
