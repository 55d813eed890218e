import {
  Metadata,
  status,
  type ServiceError,
  type sendUnaryData,
  type ServerDuplexStream,
  type ServerUnaryCall,
  type ServerWritableStream,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import { InvalidArgumentError, UnimplementedError } from '../errors.js';
import { MessageType, encapsulateSchema } from '../ipc/message-header.js';
import {
  HeaderOnlyReader,
  IpcStreamValidator,
  IpcValidationError,
  type MessageChecker,
} from '../ipc/stream-validator.js';
import type { FlightVersion } from '../storage/flight.js';
import type { Frame } from '../storage/storage-type.js';
import { StorageManager } from '../storage/manager.js';
import type { PutSession } from '../storage/put-session.js';
import type { Logger } from '../core/log.js';
import {
  DescriptorType,
  isDecodeError,
  PrefixedFlightData,
  type DecodedFlightData,
  type FlightDataFrame,
  type OutgoingFlightData,
} from './flight-data-codec.js';
import { builtinActions } from './actions/index.js';
import type { BatchSplitter } from './batch-splitter.js';
import { BufferPool } from '../core/buffer-pool.js';
import type { PbAction, PbDescriptor, PbFlightInfo, PbHandshake } from './proto.js';
import { toServiceError } from './status.js';
import {
  ANONYMOUS,
  noAuthentication,
  type Authenticator,
  type HeaderLookup,
  type Identity,
} from '../auth/authenticator.js';
import { decodeTicket, encodeTicket } from './ticket.js';

export const FLIGHT_SIZE_HEADER = 'x-tierflight-flight-size';

export interface FlightServiceOptions {
  manager: StorageManager;
  logger: Logger;
  /** Location put in endpoints; undefined means "this same server" (empty location list). */
  advertise?: string;
  /** Largest batch range one endpoint covers. */
  maxEndpointBytes: number;
  /** With `server.maxBatchBytes`: DoGet splits larger stored batches (Go and Rust clients refuse >4 MiB). */
  splitter?: BatchSplitter;
  /** Records each call's duration and final status (RPC latency metrics). */
  observeRpc?: RpcObserver;
  /**
   * False skips IPC validation on DoPut, reading only the header fields storage needs:
   * for measuring the validator's cost (bench/validator.ts), never for serving.
   */
  validateIpc?: boolean;
  /** False while the server starts (tiers wiped, flights recovered): calls get UNAVAILABLE. */
  ready?: () => boolean;
  /** Who each call is (DESIGN §7); without one, every call is anonymous. */
  authenticator?: Authenticator;
}

/** Called once per finished call with its gRPC status name (OK, NOT_FOUND, CANCELLED, ...). */
export type RpcObserver = (method: string, code: string, seconds: number) => void;

const STATUS_NAMES = new Map(Object.entries(status).map(([name, value]) => [value as number, name]));

function statusName(code: number | undefined): string {
  return STATUS_NAMES.get(code ?? status.UNKNOWN) ?? 'UNKNOWN';
}

const EMPTY: Buffer = Buffer.alloc(0);

/**
 * Read buffers kept for reuse between DoGets from the disk tiers (see BufferPool): enough
 * for a few streams' worth of batches in flight.
 */
const READ_POOL_IDLE_BYTES = 64 * 1024 * 1024;

/**
 * The Flight RPC surface (DESIGN.md §1). Deliberately thin: each handler validates the
 * request's shape, calls the storage manager and maps errors to statuses.
 */
export function createFlightService(options: FlightServiceOptions): UntypedServiceImplementation {
  const { manager, logger: log } = options;
  const observe: RpcObserver = options.observeRpc ?? (() => undefined);
  const { splitter } = options;
  const readPool = new BufferPool(READ_POOL_IDLE_BYTES);
  const actions = builtinActions();

  const endpoints = (version: FlightVersion): PbFlightInfo['endpoint'] => {
    const ranges = version.endpointRanges(options.maxEndpointBytes);
    return ranges.map((range) => ({
      ticket: {
        ticket: encodeTicket({ path: version.path, version: version.tag, ...(ranges.length > 1 ? { range } : {}) }),
      },
      location: options.advertise ? [{ uri: options.advertise }] : [],
      expiration_time: toTimestamp(version.expiresAt),
      app_metadata: EMPTY,
    }));
  };

  const flightInfo = (version: FlightVersion): PbFlightInfo => ({
    schema: encapsulateSchema(version.schemaHeader),
    flight_descriptor: { type: 'PATH', cmd: EMPTY, path: version.path.split('/') },
    endpoint: endpoints(version),
    total_records: version.totalRecords,
    total_bytes: version.totalBytes,
    ordered: true,
    app_metadata: EMPTY,
  });

  const unary =
    <Req, Res>(method: string, fn: (request: Req, call: ServerUnaryCall<Req, Res>) => Res) =>
    (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>): void => {
      const started = performance.now();
      try {
        callback(null, fn(call.request, call));
        observe(method, 'OK', (performance.now() - started) / 1000);
      } catch (err) {
        const e = toServiceError(err, log, method);
        callback(e);
        observe(method, statusName(e.code), (performance.now() - started) / 1000);
      }
    };

  const authenticator = options.authenticator ?? noAuthentication;
  return guard(
    {
      Handshake: (call: ServerDuplexStream<PbHandshake, PbHandshake>) => {
        // The authenticator checks the credentials in the headers and says what to send back
        // (a token); each request is answered, as clients that always handshake expect.
        call.on('error', () => undefined);
        const answer = authenticator.handshake(headerLookup(call.metadata)).then(({ responseHeaders }) => {
          const md = new Metadata();
          for (const [k, v] of Object.entries(responseHeaders)) md.set(k, v);
          call.sendMetadata(md);
        });
        answer.catch((err: unknown) => call.emit('error', toServiceError(err, log, 'Handshake')));
        call.on('data', (req: PbHandshake) => {
          answer.then(
            () => call.write({ protocol_version: req.protocol_version, payload: EMPTY }),
            () => undefined,
          );
        });
        call.on('end', () => {
          answer.then(
            () => call.end(),
            () => undefined,
          );
        });
      },

      ListFlights: (call: ServerWritableStream<{ expression: Buffer }, PbFlightInfo>) => {
        void streamOut(call, 'ListFlights', log, observe, async (write) => {
          const prefix = call.request.expression.toString('utf8');
          for (const version of manager.list(prefix)) await write(flightInfo(version));
        });
      },

      GetFlightInfo: unary('GetFlightInfo', (descriptor: PbDescriptor) =>
        flightInfo(manager.lookup(pathOf(descriptor))),
      ),

      GetSchema: unary('GetSchema', (descriptor: PbDescriptor) => ({
        schema: encapsulateSchema(manager.lookup(pathOf(descriptor)).schemaHeader),
      })),

      PollFlightInfo: unary('PollFlightInfo', () => {
        throw new UnimplementedError(
          'PollFlightInfo is not supported by Tierflight: flights are complete when visible; use GetFlightInfo',
        );
      }),

      DoExchange: (call: ServerDuplexStream<DecodedFlightData, OutgoingFlightData>) => {
        call.on('error', () => undefined);
        call.emit(
          'error',
          toServiceError(
            new UnimplementedError('DoExchange is not supported by Tierflight: use DoPut and DoGet'),
            log,
            'DoExchange',
          ),
        );
      },

      DoGet: (call: ServerWritableStream<{ ticket: Buffer }, OutgoingFlightData>) => {
        void streamOut(call, 'DoGet', log, observe, async (write) => {
          const ticket = decodeTicket(call.request.ticket);
          const lease = await manager.open([ticket.path], ticket.version);
          try {
            const version = lease.version;
            const messages = version.messagesFor(ticket.range);
            await write({ header: version.schemaHeader, body: EMPTY });
            const dictionaries: Frame[] = [];
            for await (const m of lease.read(messages, readPool)) {
              if (gone(call)) return;
              if (splitter) {
                if (m.kind === 'dictionary') dictionaries.push(m);
                const parts = splitter.needsSplit(m)
                  ? splitter.split(version.schemaHeader, dictionaries, m)
                  : undefined;
                if (parts) {
                  for (const p of parts) await write(p);
                  continue;
                }
              }
              const { prefixed } = m;
              if (!prefixed) await write(m);
              // Once the bytes are on the socket, a buffer read for this call goes back to the pool.
              else await write(new PrefixedFlightData(prefixed), (err) => err || readPool.release(prefixed));
            }
          } finally {
            lease.release();
          }
        });
      },

      DoPut: (call: ServerDuplexStream<DecodedFlightData, Buffer>) => {
        const started = performance.now();
        const validator = options.validateIpc === false ? new HeaderOnlyReader() : new IpcStreamValidator();
        void doPut(call, manager, log, validator).then((code) =>
          observe('DoPut', code, (performance.now() - started) / 1000),
        );
      },

      DoAction: (call: ServerWritableStream<PbAction, { body: Buffer }>) => {
        void streamOut(call, 'DoAction', log, observe, async (write) => {
          const context = { manager, log, peer: call.getPeer(), user: identityOf(call).user };
          for await (const body of actions.run(call.request.type, call.request.body, context)) await write({ body });
        });
      },

      ListActions: (call: ServerWritableStream<unknown, { type: string; description: string }>) => {
        void streamOut(call, 'ListActions', log, observe, async (write) => {
          for (const { type, description } of actions.list()) await write({ type, description });
        });
      },
    },
    options.ready ?? (() => true),
    authenticator,
    log,
  );
}

type AnyHandler = (
  call: { emit(event: 'error', err: unknown): boolean; metadata: Metadata },
  callback?: sendUnaryData<unknown>,
) => void;

/** Who each call is, for the handlers that need it (set by `guard` before they run). */
const identities = new WeakMap<object, Identity>();

export function identityOf(call: object): Identity {
  return identities.get(call) ?? ANONYMOUS;
}

/** A request header's first value, for the authenticator (which never sees gRPC). */
function headerLookup(metadata: Metadata): HeaderLookup {
  return (name) => {
    const value = metadata.get(name)[0];
    return value === undefined ? undefined : value.toString();
  };
}

function failCall(
  call: Parameters<AnyHandler>[0],
  callback: sendUnaryData<unknown> | undefined,
  err: Partial<ServiceError>,
): void {
  if (callback) callback(err);
  else call.emit('error', err);
}

/**
 * Every call passes two checks before its handler runs: the server is ready (until then
 * UNAVAILABLE: it is still wiping tiers and recovering flights), and, for every call but
 * Handshake (which authenticates itself), the authenticator says who the call is or fails
 * it (UNAUTHENTICATED).
 */
function guard(
  handlers: UntypedServiceImplementation,
  ready: () => boolean,
  authenticator: Authenticator,
  log: Logger,
): UntypedServiceImplementation {
  const guarded: UntypedServiceImplementation = {};
  for (const [name, handler] of Object.entries(handlers)) {
    const h = handler as unknown as AnyHandler;
    const wrapped: AnyHandler = (call, callback) => {
      if (!ready()) {
        failCall(call, callback, {
          code: status.UNAVAILABLE,
          details: 'Tierflight is starting (recovering flights); try again shortly',
          metadata: new Metadata(),
        });
        return;
      }
      if (name === 'Handshake') {
        h(call, callback);
        return;
      }
      authenticator.authenticate(headerLookup(call.metadata)).then(
        (identity) => {
          identities.set(call, identity);
          h(call, callback);
        },
        (err: unknown) => failCall(call, callback, toServiceError(err, log, name)),
      );
    };
    guarded[name] = wrapped as unknown as UntypedServiceImplementation[string];
  }
  return guarded;
}

/** Runs a server-streaming body with backpressure, ending the call or failing it with a status. */
async function streamOut<Req, Res>(
  call: ServerWritableStream<Req, Res>,
  method: string,
  log: Logger,
  observe: RpcObserver,
  body: (write: (msg: Res, onSent?: (err?: Error | null) => void) => Promise<void>) => Promise<void>,
): Promise<void> {
  const started = performance.now();
  // A call reset while the body was still getting ready (opening a flight) is already
  // destroyed: writing to it returns false and no 'drain' follows, so never wait on it.
  const write = (msg: Res, onSent?: (err?: Error | null) => void): Promise<void> =>
    gone(call) || call.write(msg, onSent) ? Promise.resolve() : drained(call);
  let code = 'OK';
  try {
    await body(write);
    if (!call.cancelled) call.end();
  } catch (err) {
    const e = toServiceError(err, log, method);
    code = statusName(e.code);
    if (!call.cancelled) call.emit('error', e);
  }
  observe(method, call.cancelled ? 'CANCELLED' : code, (performance.now() - started) / 1000);
}

/** True once the client is gone: cancelled, or its stream destroyed. */
function gone(call: { cancelled: boolean; destroyed: boolean }): boolean {
  return call.cancelled || call.destroyed;
}

/** Resolves when a writable call can take more, or when it is gone. */
function drained(call: NodeJS.EventEmitter & { cancelled: boolean; destroyed: boolean }): Promise<void> {
  return new Promise((resolve) => {
    if (gone(call)) {
      resolve();
      return;
    }
    const done = (): void => {
      call.off('drain', done);
      call.off('close', done);
      call.off('cancelled', done);
      resolve();
    };
    call.on('drain', done);
    call.on('close', done);
    call.on('cancelled', done);
  });
}

/** Runs one DoPut; resolves with its final status name. */
async function doPut(
  call: ServerDuplexStream<DecodedFlightData, Buffer>,
  manager: StorageManager,
  log: Logger,
  // Every message is validated before it is stored, so nothing an Arrow reader cannot read is kept.
  validator: MessageChecker,
): Promise<string> {
  let session: PutSession | undefined;
  call.on('cancelled', () => void session?.abort());
  let index = 0;
  try {
    // A plain `for await` destroys the stream when the loop ends, before grpc-js can send
    // the status; keep the call alive and end it ourselves.
    for await (const msg of call.iterator({ destroyOnReturn: false }) as AsyncIterable<DecodedFlightData>) {
      if (isDecodeError(msg)) throw new InvalidArgumentError(`message ${index}: ${msg.decodeError}`);
      const at = index++;
      if (!session) {
        session = await startPut(call, manager, msg, validator);
        continue;
      }
      const stored = toFrame(msg, session.path, validator, at);
      if (stored) await session.append(stored);
      // Exactly one PutResult per record batch (and per metadata-only message), echoing its
      // app_metadata so clients that count acknowledgements stay in step. Dictionary
      // messages are not answered, even when a client (arrow-go) puts the batch's metadata
      // on them too. Not waiting for 'drain': a client that never reads its acks must not
      // stall the put, and an ack is tiny next to the batch it answers.
      if (msg.appMetadata.length > 0 && stored?.kind !== 'dictionary') call.write(msg.appMetadata);
    }
    if (call.cancelled) {
      await session?.abort();
      return 'CANCELLED';
    }
    if (!session)
      throw new InvalidArgumentError('DoPut stream ended without any message: send a PATH descriptor with the schema');
    checkIpc(session.path, () => validator.finish(index));
    await session.commit();
    call.end();
    return 'OK';
  } catch (err) {
    await session?.abort();
    if (call.cancelled) return 'CANCELLED';
    const e = toServiceError(err, log, 'DoPut');
    call.emit('error', e);
    return statusName(e.code);
  }
}

async function startPut(
  call: ServerDuplexStream<DecodedFlightData, Buffer>,
  manager: StorageManager,
  first: FlightDataFrame,
  validator: MessageChecker,
): Promise<PutSession> {
  const d = first.descriptor;
  if (!d) throw new InvalidArgumentError('the first DoPut message must carry a FlightDescriptor with the schema');
  if (d.type !== DescriptorType.PATH) {
    throw new InvalidArgumentError(
      `Tierflight stores flights under PATH descriptors; got descriptor type ${describeType(d.type)}`,
    );
  }
  const { path } = StorageManager.parsePath(d.path);
  if (first.header.length === 0)
    throw new InvalidArgumentError(`flight "${path}": the first DoPut message carries no schema`);
  const info = checkIpc(path, () => validator.message(0, first.header, first.body));
  if (info.type !== MessageType.Schema) {
    throw new InvalidArgumentError(
      `flight "${path}": message 0 breaks the IPC rule "schema-first": the first DoPut message must be a Schema, got message type ${info.type}`,
    );
  }
  const session = await manager.beginPut(d.path, { sizeHint: sizeHint(call) });
  try {
    await session.setSchema(first.header);
  } catch (err) {
    await session.abort();
    throw err;
  }
  return session;
}

function toFrame(msg: FlightDataFrame, path: string, validator: MessageChecker, index: number): Frame | undefined {
  if (msg.header.length === 0) {
    if (msg.body.length > 0)
      throw new InvalidArgumentError(`flight "${path}": message ${index} has a body but no data_header`);
    return undefined; // metadata-only message: acknowledged, nothing to store
  }
  const info = checkIpc(path, () => validator.message(index, msg.header, msg.body));
  return {
    kind: info.type === MessageType.RecordBatch ? 'batch' : 'dictionary',
    header: msg.header,
    body: msg.body,
    appMetadata: msg.appMetadata,
    ...(msg.prefixed ? { prefixed: msg.prefixed } : {}),
    rows: info.rows,
  };
}

/** Runs a validation step, turning a broken IPC rule into INVALID_ARGUMENT naming the flight. */
function checkIpc<T>(path: string, step: () => T): T {
  try {
    return step();
  } catch (err) {
    if (err instanceof IpcValidationError) throw new InvalidArgumentError(`flight "${path}": ${err.message}`);
    throw err;
  }
}

function sizeHint(call: ServerDuplexStream<unknown, unknown>): number | undefined {
  const raw = call.metadata.get(FLIGHT_SIZE_HEADER)[0];
  if (raw === undefined) return undefined;
  const text = raw.toString();
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(Number(text))) {
    throw new InvalidArgumentError(`${FLIGHT_SIZE_HEADER} must be a byte count, got "${text}"`);
  }
  return Number(text);
}

function pathOf(descriptor: PbDescriptor): string[] {
  if (descriptor.type !== 'PATH' && descriptor.type !== DescriptorType.PATH) {
    throw new InvalidArgumentError(`Tierflight addresses flights by PATH descriptors; got ${descriptor.type}`);
  }
  return descriptor.path;
}

function describeType(type: number): string {
  return type === DescriptorType.CMD ? 'CMD' : type === DescriptorType.UNKNOWN ? 'UNKNOWN' : String(type);
}

function toTimestamp(ms: number | undefined): { seconds: number; nanos: number } | null {
  if (ms === undefined) return null;
  return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1_000_000 };
}
