import { flightPath } from '../../src/core/path.js';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { Writable } from 'node:stream';
import { SignJWT } from 'jose';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNode, type RunningNode } from '../../src/node/start.js';
import { hashPassword } from '../../src/auth/passwords.js';
import { FAILURES_PER_PEER, FAILURES_PER_USER, LoginThrottle } from '../../src/auth/login-throttle.js';
import { FlightCallError, FlightClient, FlightStatus } from '../../src/client/flight-client.js';
import { loadConfigFile } from '../../src/config/load.js';
import { systemClock } from '../../src/core/clock.js';
import type { Logger } from '../../src/core/log.js';
import { denialReporter } from '../../src/auth/denials.js';
import { makeTestCerts, type TestCerts } from '../helpers/certs.js';
import { sampleMessages } from '../helpers/raw-client.js';
import { freePort } from '../helpers/server.js';

/**
 * Probes an attacker would try (issue 22), each sent over raw gRPC with the suite's own
 * client: tokens renewed past their session or after the user's credentials changed, a
 * client certificate whose CN imitates a user's subject, the headers only cluster nodes
 * may send, one tenant's waits starving another's, the metrics port without the client
 * certificate the Flight port requires, password guessing, a token without `exp`, CBC
 * suites, and a password typed into the user field reaching the log.
 */
const SECRET = 'a-test-secret-that-is-long-enough-for-hs256-0123456789';
const PASSWORDS = { reader: 'reader-password', writer: 'writer-password', other: 'other-password' };

let certs: TestCerts;
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tierflight-probes-'));
  certs = makeTestCerts([
    { name: 'eve', subject: '/CN=eve/O=Example' },
    { name: 'forged', subject: '/CN=eve,O=Example' },
    { name: 'plus', subject: '/CN=a\\+b' },
    { name: 'plus-forged', subject: '/CN=a+OU=b' },
    { name: 'multi', subject: '/CN=m+OU=unit' },
    { name: 'quote', subject: '/CN=say "hi"' },
    { name: 'utf8', subject: '/CN=Jürgen/O=Müller & Söhne' },
  ]);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
  if (certs) await rm(certs.dir, { recursive: true, force: true });
});

/** A config file with users (the writer's password and permissions can be changed for a reload). */
async function writeConfig(
  file: string,
  options: { writerPassword?: string; writerPrefix?: string; server?: string; metrics?: string } = {},
): Promise<void> {
  const hash = async (pw: string) => JSON.stringify(await hashPassword(pw));
  await writeFile(
    file,
    `server:
  listen: 127.0.0.1:${options.server}
  tls: { cert: ${certs.serverCert}, key: ${certs.serverKey}, clientCa: ${certs.ca} }
  shutdownGrace: 1s
${options.metrics ?? ''}storageTypes:
  memory: { capacity: 64MiB }
storageClasses:
  - { name: default, prefix: "", tiers: [{ storage: memory }] }
reservations: { maxWaiters: 40, maxWaitersPerUser: 5, maxPerUser: 3 }
auth:
  tokenSecret: ${SECRET}
  tokenTtl: 2s
  sessionMax: 5s
  users:
    - name: reader
      passwordHash: ${await hash(PASSWORDS.reader)}
      permissions: [{ prefix: tenantA, access: [read] }]
    - name: writer
      passwordHash: ${await hash(options.writerPassword ?? PASSWORDS.writer)}
      permissions: [{ prefix: ${options.writerPrefix ?? 'tenantA'}, access: [read, write] }]
    - name: other
      passwordHash: ${await hash(PASSWORDS.other)}
      permissions: [{ prefix: tenantB, access: [read, write] }]
    - { name: eveadmin, certSubject: "CN=eve, O=Example", permissions: [{ prefix: "", access: [read, write, admin] }] }
    - { name: plus, certSubject: 'CN=a\\+b', permissions: [{ prefix: plus, access: [read] }] }
    - { name: multi, certSubject: "OU=unit+CN=m", permissions: [{ prefix: multi, access: [read] }] }
    - { name: quote, certSubject: 'CN=say \\"hi\\"', permissions: [{ prefix: quote, access: [read] }] }
    - { name: utf8, certSubject: "O=Müller & Söhne,CN=Jürgen", permissions: [{ prefix: utf8, access: [read] }] }
`,
  );
}

interface Server {
  app: RunningNode;
  location: string;
  file: string;
  port: number;
  logs: string[];
}

async function startServer(name: string, options: { metrics?: string; requireClientCert?: boolean } = {}) {
  const port = await freePort();
  const file = path.join(dir, `${name}.yaml`);
  await writeConfig(file, { server: String(port), ...(options.metrics ? { metrics: options.metrics } : {}) });
  if (options.requireClientCert) {
    await writeFile(file, readFileSync(file, 'utf8').replace('clientCa: ', 'requireClientCert: true, clientCa: '));
  }
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      logs.push(chunk.toString());
      done();
    },
  });
  const app = await startNode(loadConfigFile(file).config, pino({ level: 'info' }, sink), systemClock, {
    configFile: file,
  });
  return { app, location: `grpc+tls://127.0.0.1:${port}`, file, port, logs } satisfies Server;
}

const ca = () => readFileSync(certs.ca);
function client(s: Server, options: { token?: string; cert?: string; headers?: Record<string, string> } = {}) {
  const cert = options.cert ? certs.clients[options.cert]! : undefined;
  return new FlightClient(s.location, {
    tls: { ca: ca(), ...(cert ? { cert: readFileSync(cert.cert), key: readFileSync(cert.key) } : {}) },
    headers: {
      ...(options.token !== undefined ? { authorization: `Bearer ${options.token}` } : {}),
      ...options.headers,
    },
  });
}
const basic = (user: string, password: string) => ({
  authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`,
});
async function login(s: Server, user: string, password: string): Promise<string> {
  const c = client(s);
  try {
    return (await c.handshake(basic(user, password))).authorization!.replace(/^Bearer /, '');
  } finally {
    c.close();
  }
}
async function refusal(p: Promise<unknown>): Promise<FlightCallError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(FlightCallError);
  return err as FlightCallError;
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const put = (c: FlightClient, p: string, headers: Record<string, string> = {}) => {
  const { schema, batches } = sampleMessages(4, 1);
  return c.doPut(p, [schema, ...batches], headers);
};

describe('security probes', () => {
  let server: Server;
  beforeAll(async () => {
    server = await startServer('main');
  });
  afterAll(async () => {
    await server?.app.stop();
  });

  it('a token renewed through Handshake never outlives auth.sessionMax from its password login', async () => {
    let token = await login(server, 'reader', PASSWORDS.reader);
    const loggedIn = Date.now();
    const renewals: string[] = [];
    // Renew every 0.8 s (tokens last 2 s, in whole seconds): each renewal works until the session (5 s) is over.
    for (;;) {
      await sleep(800);
      const c = client(server);
      const renewed = await c.handshake({ authorization: `Bearer ${token}` }).then(
        (h) => h.authorization!.replace(/^Bearer /, ''),
        (e: unknown) => e as FlightCallError,
      );
      c.close();
      if (renewed instanceof FlightCallError) {
        expect(renewed.code).toBe(FlightStatus.UNAUTHENTICATED);
        expect(renewed.details).toMatch(/session is over \(auth.sessionMax since the login\): log in again/);
        break;
      }
      renewals.push(renewed);
      token = renewed;
      expect(Date.now() - loggedIn).toBeLessThan(7_000);
    }
    expect(renewals.length).toBeGreaterThanOrEqual(2);
    // The last token handed out expires with the session, not tokenTtl after it was signed.
    const payload = JSON.parse(Buffer.from(renewals.at(-1)!.split('.')[1]!, 'base64url').toString()) as {
      exp: number;
      auth_time: number;
    };
    expect(payload.exp).toBeLessThanOrEqual(payload.auth_time + 5);
    const late = client(server, { token });
    expect((await refusal(late.listFlights('tenantA'))).code).toBe(FlightStatus.UNAUTHENTICATED);
    late.close();
  });

  it("a change of a user's password or permissions revokes the tokens issued before it", async () => {
    const token = await login(server, 'writer', PASSWORDS.writer);
    const before = client(server, { token });
    await before.listFlights('tenantA');
    // The operator changes the writer's password and reloads (SIGHUP).
    await writeConfig(server.file, { server: String(server.port), writerPassword: 'a-new-password' });
    expect(server.app.reload()).toBe(true);
    const err = await refusal(before.listFlights('tenantA'));
    expect(err.code).toBe(FlightStatus.UNAUTHENTICATED);
    expect(err.details).toMatch(/revoked: the user's password, certificate or permissions changed/);
    before.close();
    const fresh = await login(server, 'writer', 'a-new-password');
    // A change of permissions alone revokes too.
    await writeConfig(server.file, {
      server: String(server.port),
      writerPassword: 'a-new-password',
      writerPrefix: 'tenantA/only',
    });
    expect(server.app.reload()).toBe(true);
    const after = client(server, { token: fresh });
    expect((await refusal(after.listFlights('tenantA'))).details).toMatch(/revoked/);
    after.close();
    await writeConfig(server.file, { server: String(server.port) });
    expect(server.app.reload()).toBe(true);
  });

  it('compares certificate subjects attribute by attribute: an escaped comma in a CN is not a second attribute', async () => {
    // Allowed: NOT_FOUND for the absent flight; else UNAUTHENTICATED (nobody) or PERMISSION_DENIED.
    const whoCan = async (cert: string, prefix: string) => {
      const c = client(server, { cert });
      try {
        await (prefix === '' ? c.action('stats') : c.getFlightInfo(`${prefix}/x`));
        return 'ok';
      } catch (err) {
        const code = (err as FlightCallError).code;
        return code === FlightStatus.NOT_FOUND
          ? 'ok'
          : code === FlightStatus.UNAUTHENTICATED
            ? 'unauthenticated'
            : 'denied';
      } finally {
        c.close();
      }
    };
    // CN=eve + O=Example is the admin; a CN of "eve,O=Example" (one attribute) is nobody.
    expect(await whoCan('eve', '')).toBe('ok');
    expect(await whoCan('forged', '')).toBe('unauthenticated');
    // An escaped plus is part of the value; a multi-valued RDN is two attributes.
    expect(await whoCan('plus', 'plus')).toBe('ok');
    expect(await whoCan('plus-forged', 'plus')).toBe('unauthenticated');
    expect(await whoCan('multi', 'multi')).toBe('ok'); // config order OU+CN, certificate CN+OU
    expect(await whoCan('quote', 'quote')).toBe('ok');
    expect(await whoCan('utf8', 'utf8')).toBe('ok');
    expect(await whoCan('utf8', 'plus')).toBe('denied');
    const logged = server.logs.filter((l) => l.includes('unknown_certificate')).join('\n');
    expect(logged).toContain('eve,O=Example');
  });

  it('refuses every header only cluster nodes may send from a user (PERMISSION_DENIED naming it)', async () => {
    const token = await login(server, 'writer', PASSWORDS.writer);
    for (const header of ['x-tierflight-from-node', 'x-tierflight-user', 'x-tierflight-version']) {
      const c = client(server, { token, headers: { [header]: header === 'x-tierflight-user' ? 'other' : 'node-b' } });
      for (const call of [
        put(c, 'tenantA/sneaky'),
        c.listFlights('tenantA'),
        c.action('delete', { path: 'tenantA/x' }),
      ]) {
        const err = await refusal(call);
        expect(err.code).toBe(FlightStatus.PERMISSION_DENIED);
        expect(err.details).toContain(`may not send ${header}`);
      }
      c.close();
    }
    expect(server.app.manager.has(flightPath(['tenantA/sneaky']))).toBe(false);
  });

  it("caps one user's waits and reservations, so another tenant's wait on its own path still works", async () => {
    let a = client(server, { token: await login(server, 'writer', PASSWORDS.writer) });
    const b = client(server, { token: await login(server, 'other', PASSWORDS.other) });
    await a.action('reserve', { path: 'tenantA/slow', owner: 'a', heartbeatSeconds: 30 });
    await b.action('reserve', { path: 'tenantB/mine', owner: 'b', heartbeatSeconds: 30 });
    const wait = { 'x-tierflight-wait-ms': '3000' };
    const holding = Array.from({ length: 5 }, () => a.getFlightInfo('tenantA/slow', wait).catch((e: unknown) => e));
    await sleep(300);
    const sixth = await refusal(a.getFlightInfo('tenantA/slow', wait));
    expect(sixth.code).toBe(FlightStatus.RESOURCE_EXHAUSTED);
    expect(sixth.details).toMatch(/user "writer" has 5 calls waiting .*reservations.maxWaitersPerUser: 5/);
    // The other tenant's wait is not starved: it waits, then answers as usual.
    const started = Date.now();
    const theirs = await refusal(b.getFlightInfo('tenantB/mine', { 'x-tierflight-wait-ms': '500' }));
    expect(theirs.code).toBe(FlightStatus.NOT_FOUND);
    expect(Date.now() - started).toBeGreaterThanOrEqual(400);
    await Promise.all(holding);
    a.close();
    a = client(server, { token: await login(server, 'writer', PASSWORDS.writer) }); // tokenTtl is 2 s here
    // Held reservations: 3 per user; the 4th new one is refused, renewing one held is not.
    await a.action('reserve', { path: 'tenantA/r2', owner: 'a', heartbeatSeconds: 30 });
    await a.action('reserve', { path: 'tenantA/r3', owner: 'a', heartbeatSeconds: 30 });
    const fourth = await refusal(a.action('reserve', { path: 'tenantA/r4', owner: 'a', heartbeatSeconds: 30 }));
    expect(fourth.code).toBe(FlightStatus.RESOURCE_EXHAUSTED);
    expect(fourth.details).toMatch(/reservations.maxPerUser: 3/);
    await a.action('reserve', { path: 'tenantA/r3', owner: 'a', heartbeatSeconds: 30 });
    await a.action('release', { path: 'tenantA/r3', owner: 'a' });
    await a.action('reserve', { path: 'tenantA/r4', owner: 'a', heartbeatSeconds: 30 });
    const metrics = await server.app.metrics.registry.metrics();
    expect(metrics).toMatch(/tierflight_reservation_refusals_total\{reason="max_waiters_per_user"\} 1/);
    expect(metrics).toMatch(/tierflight_reservation_refusals_total\{reason="max_per_user"\} 1/);
    a.close();
    b.close();
  });

  it('logs an unknown user name as a hash only (it may be a password typed into the user field)', async () => {
    const other = await startServer('log-probe');
    try {
      const c = client(other);
      await c.handshake(basic('my-secret-password-typed-as-user', 'x')).catch(() => undefined);
      c.close();
      const lines = other.logs.filter((l) => l.includes('authentication failed'));
      expect(lines.length).toBeGreaterThan(0);
      expect(lines.join('\n')).not.toContain('my-secret-password');
      expect(lines.join('\n')).toMatch(/"userHash":"sha256:[0-9a-f]{12}"/);
    } finally {
      await other.app.stop();
    }
  });

  it('logs each permission denial with the user, the access, the path and the peer', async () => {
    const reader = client(server, { token: await login(server, 'reader', PASSWORDS.reader) });
    expect((await refusal(reader.getFlightInfo('tenantB/secret'))).code).toBe(FlightStatus.PERMISSION_DENIED);
    reader.close();
    const line = server.logs
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .findLast((l) => l.msg === 'permission denied');
    expect(line).toMatchObject({ user: 'reader', access: 'read', path: 'tenantB/secret', level: 40 });
    expect(String(line?.peer)).toMatch(/127\.0\.0\.1/);
  });

  it('refuses a correctly signed token without exp', async () => {
    const noExp = await new SignJWT({ auth_time: Math.floor(Date.now() / 1000) })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject('reader')
      .setIssuer('tierflight')
      .setIssuedAt()
      .sign(new TextEncoder().encode(SECRET));
    const c = client(server, { token: noExp });
    const err = await refusal(c.listFlights('tenantA'));
    expect(err.code).toBe(FlightStatus.UNAUTHENTICATED);
    expect(err.details).toMatch(/not valid/);
    c.close();
  });

  it('offers TLS 1.2 AEAD suites only: a CBC suite is refused, GCM accepted', async () => {
    const handshake = (ciphers: string) =>
      new Promise<string>((resolve) => {
        const socket = tls.connect({
          host: '127.0.0.1',
          port: server.port,
          ca: ca(),
          servername: 'localhost',
          maxVersion: 'TLSv1.2',
          ciphers,
          ALPNProtocols: ['h2'],
        });
        socket.once('secureConnect', () => {
          resolve(socket.getCipher().name);
          socket.destroy();
        });
        socket.once('error', (err) => resolve(`refused: ${err.message}`));
      });
    expect(await handshake('ECDHE-ECDSA-AES128-SHA')).toMatch(/^refused/);
    expect(await handshake('ECDHE-ECDSA-AES256-SHA384')).toMatch(/^refused/);
    expect(await handshake('ECDHE-ECDSA-AES128-GCM-SHA256')).toBe('ECDHE-ECDSA-AES128-GCM-SHA256');
  });
  // Last: it leaves this address throttled for the rest of the file's server.
  it('throttles password guessing per user and per address, before checking any password', async () => {
    const c = client(server);
    const attempt = (user: string, password: string) =>
      c.handshake(basic(user, password)).then(
        () => 'ok',
        (e: unknown) => (e as FlightCallError).details,
      );
    const answers: string[] = [];
    for (let i = 0; i < FAILURES_PER_USER + 2; i++) answers.push(await attempt('reader', `guess-${i}`));
    expect(
      answers
        .slice(0, FAILURES_PER_USER)
        .every((a) => a === 'wrong user name or password [retrying the same call will not help]'),
    ).toBe(true);
    // When to try again is in the words and in the x-tierflight-retry trailer.
    expect(answers.at(-1)).toMatch(/^too many failed logins for this user or from this address \[retry in \d+ s\]$/);
    const throttled = await c.handshake(basic('reader', 'x')).catch((e: unknown) => e as FlightCallError);
    expect(throttled).toMatchObject({ retry: { where: 'here', afterMs: expect.any(Number) } });
    expect((throttled as FlightCallError).retry).not.toEqual({ where: 'here', afterMs: 0 });
    // The right password is refused too while the name is throttled.
    expect(await attempt('reader', PASSWORDS.reader)).toMatch(/too many failed logins/);
    // Guessing across names from one address is throttled by the address.
    const spray: string[] = [];
    for (let i = 0; i < FAILURES_PER_PEER; i++) spray.push(await attempt(`nobody-${i}`, 'x'));
    expect(spray.at(-1)).toMatch(/too many failed logins/);
    expect(await attempt('other', PASSWORDS.other)).toMatch(/too many failed logins/);
    const metrics = await server.app.metrics.registry.metrics();
    expect(Number(/tierflight_auth_failures_total\{reason="throttled"\} (\d+)/.exec(metrics)?.[1])).toBeGreaterThan(2);
    c.close();
  });
});

describe('the metrics port follows the Flight port’s client-certificate rule', () => {
  it('refuses a client without a certificate when the Flight port requires one', async () => {
    const metricsPort = await freePort();
    const s = await startServer('metrics', {
      metrics: `  metrics: 127.0.0.1:${metricsPort}\n`,
      requireClientCert: true,
    });
    try {
      const get = (cert?: { cert: string; key: string }) =>
        new Promise<string>((resolve) => {
          const req = https.get(
            {
              host: '127.0.0.1',
              port: metricsPort,
              path: '/metrics',
              ca: ca(),
              servername: 'localhost',
              ...(cert ? { cert: readFileSync(cert.cert), key: readFileSync(cert.key) } : {}),
            },
            (res) => {
              res.resume();
              resolve(String(res.statusCode));
            },
          );
          req.on('error', (err) => resolve(`refused: ${err.message}`));
        });
      expect(await get()).toMatch(/^refused/);
      expect(await get(certs.clients.eve)).toBe('200');
    } finally {
      await s.app.stop();
    }
  });
});

describe('the login throttle', () => {
  it('runs at most two password checks at once', async () => {
    const throttle = new LoginThrottle();
    let running = 0;
    let most = 0;
    await Promise.all(
      Array.from({ length: 10 }, () =>
        throttle.check(async () => {
          running++;
          most = Math.max(most, running);
          await sleep(10);
          running--;
        }),
      ),
    );
    expect(most).toBe(2);
  });
});

describe('the permission-denial log', () => {
  it('logs 20 denials per 10 s one by one, then one line with how many more', () => {
    const lines: { fields: Record<string, unknown>; msg: string }[] = [];
    const log = { warn: (fields: Record<string, unknown>, msg: string) => lines.push({ fields, msg }) };
    let now = 0;
    let counted = 0;
    const report = denialReporter(
      log as unknown as Logger,
      () => counted++,
      () => now,
    );
    for (let i = 0; i < 100; i++) report({ user: 'u', access: 'read', path: `p/${i}`, peer: 'ipv4:1.2.3.4:5' });
    expect(counted).toBe(100);
    expect(lines.filter((l) => l.msg === 'permission denied')).toHaveLength(20);
    now = 10_000;
    report({ user: 'u', access: 'read', path: 'p/last' });
    expect(lines.at(-2)).toEqual({
      fields: { suppressed: 80, windowMs: 10_000 },
      msg: 'more permission denials, not logged one by one',
    });
    expect(lines.at(-1)?.fields).toMatchObject({ path: 'p/last' });
  });
});
