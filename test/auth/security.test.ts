import { execFile } from 'node:child_process';
import { copyFileSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import https from 'node:https';
import { credentials, status } from '@grpc/grpc-js';
import { tableFromArrays, tableToIPC } from 'apache-arrow';
import { configErrors } from '../helpers/config.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashPassword } from '../../src/auth/passwords.js';
import { FlightClient } from '../../src/client/flight-client.js';
import { makeTestCerts, type TestCerts } from '../helpers/certs.js';
import { runPyClient } from '../helpers/python.js';
import { freePort, startTestServer, type TestServer } from '../helpers/server.js';
import { GO_CLIENT, JAVA_CHECK } from '../setup/clients.js';

/**
 * DESIGN §7 security with real clients: TLS and mutual TLS with certificates the suite
 * makes, Handshake basic → bearer with pyarrow's own helper, expired and tampered tokens,
 * every permission boundary, ListFlights filtered, failures counted, certificates reloaded
 * under a streaming call, and the metrics port behind TLS and a bearer token.
 */
const PASSWORDS = { reader: 'reader-password', writer: 'writer-password', admin: 'admin-password' };
const SECRET = 'a-test-secret-that-is-long-enough-for-hs256-0123456789';

let certs: TestCerts;

async function securityConfig(extraServer = '', ttl = '4s'): Promise<string> {
  const hash = async (pw: string) => JSON.stringify(await hashPassword(pw));
  return `${extraServer}storageTypes:
  memory: { capacity: 64MiB }
storageClasses:
  - { name: default, prefix: "", tiers: [{ storage: memory }] }
auth:
  tokenSecret: \${TIERFLIGHT_TEST_TOKEN_SECRET}
  tokenTtl: ${ttl}
  users:
    - name: reader
      passwordHash: ${await hash(PASSWORDS.reader)}
      permissions: [{ prefix: tenant1, access: [read] }]
    - name: writer
      passwordHash: ${await hash(PASSWORDS.writer)}
      permissions: [{ prefix: tenant1, access: [read, write] }]
    - name: admin
      passwordHash: ${await hash(PASSWORDS.admin)}
      certSubject: CN=ops
      permissions: [{ prefix: "", access: [read, write, admin] }]
`;
}

function tlsServer(requireClientCert = false): string {
  return `  tls: { cert: ${certs.serverCert}, key: ${certs.serverKey}, clientCa: ${certs.ca}, requireClientCert: ${requireClientCert} }\n`;
}

async function startSecure(requireClientCert = false, extra = ''): Promise<TestServer & { tlsLocation: string }> {
  const port = await freePort();
  const server = await startTestServer(await securityConfig(), {
    server: tlsServer(requireClientCert) + extra,
    port,
    advertise: `grpc+tls://127.0.0.1:${port}`,
  });
  return { ...server, tlsLocation: `grpc+tls://127.0.0.1:${server.port}` };
}

beforeAll(() => {
  process.env.TIERFLIGHT_TEST_TOKEN_SECRET = SECRET;
  certs = makeTestCerts(['ops', 'nobody']);
});
afterAll(async () => {
  if (certs) await rm(certs.dir, { recursive: true, force: true });
});

describe('TLS, tokens and permissions (pyarrow)', () => {
  let server: TestServer & { tlsLocation: string };
  beforeAll(async () => {
    server = await startSecure();
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('authenticates the Flight way and enforces every permission boundary', async () => {
    const out = await runPyClient<Record<string, unknown>>('security', server.tlsLocation, [
      '--script',
      JSON.stringify({
        ca: certs.ca,
        users: PASSWORDS,
        ttl_s: 4,
        certs: {
          ops: [certs.clients.ops!.cert, certs.clients.ops!.key],
          nobody: [certs.clients.nobody!.cert, certs.clients.nobody!.key],
        },
      }),
    ]);
    const unauthenticated = { error: 'FlightUnauthenticatedError' };
    const denied = { error: 'FlightUnauthorizedError' };
    expect(out).toMatchObject({
      no_credentials: unauthenticated,
      bad_password: unauthenticated,
      unknown_user: unauthenticated,
      token_header: ['authorization', 'Bearer'],
      reader_list: ['tenant1/a'],
      reader_get: 3,
      reader_get_other: denied,
      reader_put: denied,
      writer_put: 'ok',
      writer_put_other: denied,
      writer_delete: [{ deleted: true }],
      writer_delete_prefix: denied,
      writer_stats: denied,
      writer_reserve: 'acquired',
      admin_stats: 'ok',
      admin_list: ['tenant1/a', 'tenant2/b'],
      tampered: unauthenticated,
      lowercase_scheme: 1,
      cert_ops: ['tenant1/a', 'tenant2/b'],
      cert_nobody: unauthenticated,
      expired: unauthenticated,
    });
    const message = (key: string) => (out[key] as { message: string }).message;
    expect(message('reader_put')).toMatch(/user "reader" needs write access to "tenant1\/x"/);
    expect(message('writer_delete_prefix')).toMatch(/user "writer" needs admin access to "tenant1"/);
    expect(message('expired')).toMatch(/expired/);
    expect(message('bad_password')).toMatch(/wrong user name or password/);

    const metrics = await server.app.metrics.registry.metrics();
    for (const reason of [
      'no_credentials',
      'bad_password',
      'unknown_user',
      'bad_token',
      'expired_token',
      'unknown_certificate',
    ]) {
      expect(metrics).toMatch(new RegExp(`^tierflight_auth_failures_total\\{reason="${reason}"\\} [1-9]`, 'm'));
    }
    expect(metrics).toMatch(/^tierflight_auth_failures_total\{reason="permission_denied"\} [5-9]$/m);
  });

  it('refuses a client that does not trust the server, and one without the CA', async () => {
    const untrusted = await runPyClient<{ error: string }>('tls-untrusted', server.tlsLocation, [
      '--script',
      JSON.stringify({ ca: certs.strangerCa }),
    ]);
    expect(untrusted.error).toBe('FlightUnavailableError');
    const plain = await runPyClient<{ error: string }>('tls-untrusted', `grpc://127.0.0.1:${server.port}`, [
      '--script',
      '{}',
    ]);
    expect(plain.error).toBe('FlightUnavailableError');
  });
});

describe('mutual TLS required', () => {
  let server: TestServer & { tlsLocation: string };
  beforeAll(async () => {
    server = await startSecure(true);
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('refuses connections without a client certificate; one whose subject is a user needs no password', async () => {
    const without = await runPyClient<{ error: string }>('tls-untrusted', server.tlsLocation, [
      '--script',
      JSON.stringify({ ca: certs.ca }),
    ]);
    expect(without.error).toBe('FlightUnavailableError');
    const ops = await runPyClient<{ listed: number }>('tls-untrusted', server.tlsLocation, [
      '--script',
      JSON.stringify({ ca: certs.ca, cert: [certs.clients.ops!.cert, certs.clients.ops!.key] }),
    ]);
    expect(ops).toEqual({ listed: 0 });
  });
});

describe('certificates reloaded on SIGHUP', () => {
  it('serves new connections with the new certificate while a stream on the old one finishes', async () => {
    const fresh = makeTestCerts([]);
    const live = makeTestCerts([]); // the files the server reads; overwritten by the reload
    const port = await freePort();
    const server = await startTestServer(
      'storageTypes:\n  memory: { capacity: 64MiB }\nstorageClasses:\n  - { name: default, prefix: "", tiers: [{ storage: memory }] }\n',
      {
        server: `  tls: { cert: ${live.serverCert}, key: ${live.serverKey} }\n  maxEndpointBytes: 1GiB\n`,
        port,
        advertise: `grpc+tls://127.0.0.1:${port}`,
      },
    );
    const location = `grpc+tls://127.0.0.1:${port}`;
    const before = new FlightClient(location, { credentials: credentials.createSsl(readFileSync(live.ca)) });
    try {
      const n = 200_000;
      const table = tableFromArrays({ v: Float64Array.from({ length: n }, (_, i) => i) });
      const batches = Array.from({ length: 20 }, () => table);
      const { encapsulatedMessages } = await import('../../src/ipc/ipc-stream.js');
      const [schema, batch] = encapsulatedMessages(tableToIPC(table, 'stream'));
      await before.doPut('big', [schema!, ...batches.map(() => batch!)]);
      const info = await before.getFlightInfo('big');
      const stream = before.doGet(info.endpoints[0]!.ticket);
      let read = 0;
      for await (const message of stream) {
        expect(message.header.length).toBeGreaterThan(0);
        if (++read === 2) {
          // Renew: the files now hold a certificate from another CA.
          copyFileSync(fresh.serverCert, live.serverCert);
          copyFileSync(fresh.serverKey, live.serverKey);
          server.app.reload();
        }
      }
      expect(read).toBe(21); // the schema and every batch, on the connection opened before
      const oldCa = new FlightClient(location, { credentials: credentials.createSsl(readFileSync(live.ca)) });
      await expect(oldCa.listFlights()).rejects.toMatchObject({ code: status.UNAVAILABLE });
      oldCa.close();
      const newCa = new FlightClient(location, { credentials: credentials.createSsl(readFileSync(fresh.ca)) });
      expect((await newCa.listFlights()).map((f) => f.path.join('/'))).toEqual(['big']);
      newCa.close();
    } finally {
      before.close();
      await server.stop();
      await rm(fresh.dir, { recursive: true, force: true });
      await rm(live.dir, { recursive: true, force: true });
    }
  });
});

describe('the metrics port with TLS and a bearer token', () => {
  it('answers /metrics only with the token, over HTTPS', async () => {
    const metricsPort = await freePort();
    const server = await startSecure(
      false,
      `  metrics: 127.0.0.1:${metricsPort}\n  metricsToken: metrics-token-0123456789\n`,
    );
    const get = (headers: Record<string, string>) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        https
          .get(
            { host: '127.0.0.1', port: metricsPort, path: '/metrics', ca: readFileSync(certs.ca), headers },
            (res) => {
              let body = '';
              res.on('data', (d: Buffer) => (body += d.toString()));
              res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
            },
          )
          .on('error', reject);
      });
    try {
      expect((await get({})).status).toBe(401);
      expect((await get({ authorization: 'Bearer wrong-token-0123456789' })).status).toBe(401);
      const ok = await get({ authorization: 'Bearer metrics-token-0123456789' });
      expect(ok.status).toBe(200);
      expect(ok.body).toMatch(/^tierflight_auth_failures_total/m);
    } finally {
      await server.stop();
    }
  });
});

describe('security configuration', () => {
  const parse = (yaml: string) => configErrors(yaml, 'sec.yaml');
  const base = `storageTypes:\n  memory: { capacity: 1MiB }\nstorageClasses:\n  - { name: d, prefix: "", tiers: [{ storage: memory }] }\n`;
  const hash = '"$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"';

  it('refuses a short secret, users without permissions or credentials, duplicates and unknown access words, at their line', () => {
    const text = parse(`${base}auth:
  tokenSecret: short
  users:
    - { name: a, passwordHash: ${hash}, permissions: [] }
    - { name: b, passwordHash: ${hash}, permissions: [{ prefix: x, access: [read, delete] }] }
    - { name: b, passwordHash: ${hash}, permissions: [{ prefix: x, access: [read] }] }
`);
    expect(text).toMatch(/sec\.yaml:6:\d+: auth\.tokenSecret: tokenSecret must be at least 32 characters/);
    expect(text).toMatch(/sec\.yaml:8:\d+: auth\.users\[0\]\.permissions: a user needs at least one permission/);
    expect(text).toMatch(/sec\.yaml:9:\d+: auth\.users\[1\]\.permissions\[0\]\.access\[1\]: .*read.*write.*admin/);
    const dup = parse(`${base}auth:
  tokenSecret: ${SECRET}
  users:
    - { name: b, passwordHash: ${hash}, permissions: [{ prefix: x, access: [read] }] }
    - { name: b, permissions: [{ prefix: x, access: [read] }] }
`);
    expect(dup).toMatch(/sec\.yaml:9:\d+: auth\.users\[1\]\.name: duplicate user name "b"/);
    expect(dup).toMatch(/auth\.users\[1\]: user "b" needs a passwordHash or a certSubject/);
  });

  it('reads the token secret from the environment, and says so when the variable is missing', () => {
    delete process.env.TIERFLIGHT_MISSING_SECRET;
    const text = parse(`${base}auth:
  tokenSecret: \${TIERFLIGHT_MISSING_SECRET}
  users:
    - { name: b, passwordHash: ${hash}, permissions: [{ prefix: x, access: [read] }] }
`);
    expect(text).toMatch(
      /sec\.yaml:6:\d+: auth\.tokenSecret: environment variable TIERFLIGHT_MISSING_SECRET is not set/,
    );
    expect(text).not.toContain(SECRET);
  });
});

describe('Go and Java clients log in with their own helpers', () => {
  let server: TestServer;
  beforeAll(async () => {
    const hash = JSON.stringify(await hashPassword('client-password'));
    server = await startTestServer(`storageTypes:
  memory: { capacity: 64MiB }
storageClasses:
  - { name: default, prefix: "", tiers: [{ storage: memory }] }
auth:
  tokenSecret: \${TIERFLIGHT_TEST_TOKEN_SECRET}
  users:
    - { name: clients, passwordHash: ${hash}, permissions: [{ prefix: tenant1, access: [read, write] }] }
`);
  });
  afterAll(async () => {
    await server?.stop();
  });

  const run = (command: string, args: string[], env: Record<string, string> = {}) =>
    new Promise<Record<string, { ok: boolean; error?: string }>>((resolve, reject) => {
      execFile(command, args, { timeout: 120_000, env: { ...process.env, ...env } }, (err, stdout, stderr) =>
        err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(JSON.parse(stdout)),
      );
    });

  it('arrow-go: AuthenticateBasicToken (unpadded base64), then puts and reads within its permissions', async () => {
    const out = await run(GO_CLIENT, ['auth', server.location], {
      FLIGHTCHECK_USER: 'clients',
      FLIGHTCHECK_PASSWORD: 'client-password',
    });
    expect(out.auth).toMatchObject({ ok: true });
  });

  it('Arrow Java: authenticateBasicToken, then puts and reads within its permissions', async () => {
    const out = await run('java', [...JAVA_CHECK, '127.0.0.1', String(server.port), 'clients', 'client-password']);
    expect(out.auth).toEqual({ ok: true });
  });
});

describe('limits with authentication on', () => {
  it('still refuses a message over maxMessageSize from an authenticated user', async () => {
    const server = await startSecure(false, '  maxMessageSize: 1MiB\n');
    const tls = credentials.createSsl(readFileSync(certs.ca));
    const client = new FlightClient(server.tlsLocation, { credentials: tls });
    try {
      const basic = Buffer.from(`admin:${PASSWORDS.admin}`).toString('base64');
      const answer = await client.handshake({ authorization: `Basic ${basic}` });
      expect(answer.authorization).toMatch(/^Bearer /);
      const authed = new FlightClient(server.tlsLocation, {
        credentials: tls,
        headers: { authorization: answer.authorization! },
      });
      try {
        const big = tableFromArrays({ v: Float64Array.from({ length: 300_000 }, (_, i) => i) }); // 2.4 MB batch
        await expect(authed.putStream('tenant1/big', tableToIPC(big, 'stream'))).rejects.toMatchObject({
          code: status.RESOURCE_EXHAUSTED,
        });
        const small = tableFromArrays({ v: Float64Array.of(1, 2, 3) });
        await authed.putStream('tenant1/small', tableToIPC(small, 'stream'));
        expect((await authed.listFlights()).map((f) => f.path.join('/'))).toEqual(['tenant1/small']);
      } finally {
        authed.close();
      }
    } finally {
      client.close();
      await server.stop();
    }
  });
});
