import { Datasets } from '../../src/datasets/datasets.js';
import { Reservations } from '../../src/coordination/reservations.js';
import { MemoryReservationStore } from '../../src/coordination/memory-store.js';
import { reservationsSchema } from '../../src/config/schema.js';
import { Client, credentials, Metadata, status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Authenticator } from '../../src/auth/authenticator.js';
import { parseConfigText } from '../../src/config/load.js';
import { ManualClock } from '../../src/core/clock.js';
import { silentLogger } from '../../src/core/log.js';
import { UnauthenticatedError } from '../../src/errors.js';
import { startFlightServer, type FlightServer } from '../../src/flight/server.js';
import { encodeRequest, RawFlightClient } from '../helpers/raw-client.js';
import { createManager, type TestManager } from '../helpers/manager.js';
import { freePort, MEMORY_ONLY } from '../helpers/server.js';

/**
 * The authentication seam (issue 12; issue 14 fills it): the Flight edge asks the
 * Authenticator about every call and lets Handshake answer with its headers. A stand-in
 * authenticator that knows one password and one token shows the edge does both.
 */
const ops = { user: 'ops', anonymous: false, node: false, can: () => true };
const standIn: Authenticator = {
  handshake: ({ headers }) =>
    headers('x-password') === 'open sesame'
      ? Promise.resolve({ identity: ops, responseHeaders: { authorization: 'Bearer t1' } })
      : Promise.reject(new UnauthenticatedError('wrong password')),
  authenticate: ({ headers }) =>
    headers('authorization') === 'Bearer t1'
      ? Promise.resolve(ops)
      : Promise.reject(new UnauthenticatedError('no or bad token')),
};

describe('the authentication seam', () => {
  let tm: TestManager;
  let server: FlightServer;
  let location: string;
  beforeAll(async () => {
    tm = await createManager(MEMORY_ONLY(), new ManualClock(0));
    const port = await freePort();
    const config = parseConfigText(`server:\n  listen: 127.0.0.1:${port}\n${MEMORY_ONLY()}`, 'auth.yaml');
    server = await startFlightServer(config.server, tm.manager, silentLogger, {
      authenticator: standIn,
      datasets: new Datasets(new ManualClock(0), {
        stored: () => [],
        remove: (paths) => paths.forEach((p) => tm.manager.delete(p)),
        pin: () => Promise.resolve(),
        graceMs: 0,
      }),
      reservations: new Reservations(
        new MemoryReservationStore(new ManualClock(0)),
        reservationsSchema.parse({}),
        new ManualClock(0),
        silentLogger,
      ),
    });
    location = `grpc://127.0.0.1:${port}`;
  });
  afterAll(async () => {
    await server?.stop(0);
    await tm?.cleanup();
  });

  it('asks the authenticator about every call: UNAUTHENTICATED without a token, served with one', async () => {
    const raw = new RawFlightClient(location);
    const info = encodeRequest.descriptor({ type: 'PATH', path: ['a'] });
    expect(await raw.unary('GetFlightInfo', info)).toMatchObject({
      code: status.UNAUTHENTICATED,
      details: 'no or bad token [retrying the same call will not help]',
      retry: 'never',
    });
    const md = new Metadata();
    md.set('authorization', 'Bearer t1');
    expect(await raw.unary('GetFlightInfo', info, md)).toMatchObject({ code: status.NOT_FOUND });
    expect((await raw.serverStream('ListActions', Buffer.alloc(0), md)).code).toBe(status.OK);
    raw.close();
  });

  it('lets Handshake answer with the authenticator’s headers, or fail with its error', async () => {
    const client = new Client(location.replace('grpc://', ''), credentials.createInsecure());
    const handshake = (password: string) =>
      new Promise<{ code: number; authorization?: string }>((resolve) => {
        const md = new Metadata();
        md.set('x-password', password);
        const call = client.makeBidiStreamRequest(
          '/arrow.flight.protocol.FlightService/Handshake',
          (b: Buffer) => b,
          (b: Buffer) => b,
          md,
        );
        let authorization: string | undefined;
        call.on('metadata', (m: Metadata) => (authorization = m.get('authorization')[0]?.toString()));
        call.on('data', () => undefined);
        call.on('error', (e: { code: number }) => resolve({ code: e.code }));
        call.on('status', (s: { code: number }) => s.code === 0 && resolve({ code: 0, authorization }));
        call.write(Buffer.alloc(0));
        call.end();
      });
    expect(await handshake('open sesame')).toEqual({ code: status.OK, authorization: 'Bearer t1' });
    expect(await handshake('guess')).toEqual({ code: status.UNAUTHENTICATED });
    client.close();
  });
});
