import http2 from 'node:http2';
import { Server, ServerCredentials } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { encodeFlightData, PrefixedFlightData } from '../../src/flight/flight-data-codec.js';
import {
  allowHonestCancels,
  FLOW_CONTROL_WINDOW,
  installNoMessageAfterStatus,
  installPrefixedSend,
  MAX_FRAME_SIZE,
  STREAM_RESET_BURST,
  widenFlowControlWindows,
} from '../../src/flight/grpc-internals.js';

/**
 * One test per grpc-js internal Tierflight relies on (src/flight/grpc-internals.ts): each
 * fails when a grpc-js upgrade moves what it reaches, so the upgrade is noticed here and
 * not as a slower or less tolerant server.
 */
describe('grpc-js internals', () => {
  const header = Buffer.from('header-bytes');
  const body = Buffer.alloc(300, 7);
  const u32 = (n: number): number[] => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];

  it('has grpc-js send prefixed messages as they are, and frame everything else itself', async () => {
    expect(installPrefixedSend()).toBe(true);
    const { BaseServerInterceptingCall } =
      (await import('@grpc/grpc-js/build/src/server-interceptors.js')) as unknown as {
        BaseServerInterceptingCall: { prototype: { serializeMessage(v: unknown): Buffer } };
      };
    const call = Object.create(BaseServerInterceptingCall.prototype) as {
      handler: { serialize(v: unknown): Buffer };
      serializeMessage(v: unknown): Buffer;
    };
    call.handler = { serialize: encodeFlightData as (v: unknown) => Buffer };
    const wire = encodeFlightData({ header, body });
    const prefixed = Buffer.from([0, ...u32(wire.length), ...wire]);
    expect(call.serializeMessage(new PrefixedFlightData(prefixed))).toBe(prefixed); // no copy
    const framed = call.serializeMessage({ header, body });
    expect(framed).toEqual(prefixed); // the same bytes grpc-js's own framing produces
  });

  it('has grpc-js drop a message written once the status is on its way', async () => {
    expect(installNoMessageAfterStatus()).toBe(true);
    const { BaseServerInterceptingCall } =
      (await import('@grpc/grpc-js/build/src/server-interceptors.js')) as unknown as {
        BaseServerInterceptingCall: { prototype: { sendMessage(m: unknown, cb?: () => void): void } };
      };
    const sent: unknown[] = [];
    const call = Object.create(BaseServerInterceptingCall.prototype) as {
      wantTrailers: boolean;
      checkCancelled(): boolean;
      sendMessage(m: unknown, cb?: () => void): void;
    };
    call.checkCancelled = () => {
      sent.push('reached grpc-js');
      return true;
    };
    call.wantTrailers = true;
    call.sendMessage('late ack');
    expect(sent).toEqual([]);
    call.wantTrailers = false;
    call.sendMessage('ack');
    expect(sent).toEqual(['reached grpc-js']);
  });

  it('takes the HTTP/2 stream-reset limits into the options of the http2 server grpc-js creates', () => {
    const server = new Server();
    expect(allowHonestCancels(server)).toBe(true);
    expect((server as unknown as { commonServerOptions: Record<string, unknown> }).commonServerOptions).toMatchObject({
      streamResetBurst: STREAM_RESET_BURST,
    });
  });

  it('widens the HTTP/2 windows and frame size of the http2 servers grpc-js bound', async () => {
    const server = new Server();
    await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, port) =>
        err ? reject(err) : resolve(port),
      ),
    );
    expect(widenFlowControlWindows(server)).toBe(true);
    const servers = (server as unknown as { http2Servers: Map<http2.Http2Server, unknown> }).http2Servers;
    // A client sees the server's settings once it connects.
    const port = (([...servers.keys()][0] as http2.Http2Server).address() as { port: number }).port;
    const client = http2.connect(`http://127.0.0.1:${port}`);
    const remote = await new Promise<http2.Settings>((resolve) => client.once('remoteSettings', resolve));
    client.close();
    server.forceShutdown();
    expect(remote).toMatchObject({ initialWindowSize: FLOW_CONTROL_WINDOW, maxFrameSize: MAX_FRAME_SIZE });
  });
});
