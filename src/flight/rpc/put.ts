import { annotate } from '../../core/trace.js';
import type { ServerDuplexStream } from '@grpc/grpc-js';
import { InvalidArgumentError } from '../../errors.js';
import { FROM_NODE_HEADER, VERSION_HEADER } from '../cluster-port.js';
import { bodyLength, bodyOf, withBodyOf, type Frame } from '../../ipc/frame.js';
import { MessageType } from '../../ipc/message-header.js';
import {
  HeaderOnlyReader,
  IpcStreamValidator,
  IpcValidationError,
  type MessageChecker,
} from '../../ipc/stream-validator.js';
import type { StorageManager } from '../../storage/manager.js';
import type { PutSession } from '../../storage/put-session.js';
import type { VersionIdentity } from '../../storage/flight.js';
import { statusName, type RpcContext } from '../call.js';
import { DescriptorType, isDecodeError, type DecodedFlightData, type FlightDataFrame } from '../flight-data-codec.js';
import { toServiceError } from '../status.js';
import { flightPath, partitionOf, partitionPath, storedPath, type FlightPath } from '../../core/path.js';
import { PARTITION_HEADER, parsePartition } from '../../datasets/datasets.js';
import { authorize } from '../guard.js';
import { factsOf } from '../dataset-homes.js';

/** A request header giving the flight's size up front, so it is charged to a tier that takes it. */
export const FLIGHT_SIZE_HEADER = 'x-tierflight-flight-size';
/** A request header naming the reservation owner whose computation this put delivers (DESIGN §6). */
export const OWNER_HEADER = 'x-tierflight-owner';

/** DoPut: every message validated, then stored; one PutResult per record batch; visible at the end. */
export function doPutHandler(ctx: RpcContext) {
  return (call: ServerDuplexStream<DecodedFlightData, Buffer>): void => {
    const started = performance.now();
    const validator = ctx.validateIpc ? new IpcStreamValidator() : new HeaderOnlyReader();
    void doPut(call, ctx, validator).then((code) => ctx.observe('DoPut', code, (performance.now() - started) / 1000));
  };
}

/** Runs one DoPut; resolves with its final status name. */
async function doPut(
  call: ServerDuplexStream<DecodedFlightData, Buffer>,
  ctx: RpcContext,
  // Every message is validated before it is stored, so nothing an Arrow reader cannot read is kept.
  validator: MessageChecker,
): Promise<string> {
  const { manager, log, denied } = ctx;
  let session: PutSession | undefined;
  /** A partition of a dataset (`x-tierflight-partition`): its dataset, generation, index and count. */
  let partition: { dataset: FlightPath; generation: number; index: number; count: number } | undefined;
  call.on('cancelled', () => void session?.abort());
  let index = 0;
  // A plain `for await` destroys the stream when the loop ends, before grpc-js can send
  // the status; keep the call alive and end it ourselves.
  const incoming = (call.iterator({ destroyOnReturn: false }) as AsyncIterable<DecodedFlightData>)[
    Symbol.asyncIterator
  ]();
  try {
    for (let next = await incoming.next(); !next.done; next = await incoming.next()) {
      const msg = next.value;
      if (isDecodeError(msg)) throw new InvalidArgumentError(`message ${index}: ${msg.decodeError}`);
      const at = index++;
      if (!session) {
        // The path is parsed once, here; a put of a path another node is the primary owner of goes there.
        const path = descriptorPath(msg, call);
        authorize(call, path, 'write', denied);
        const part = partitionHeader(call);
        // A dataset's partition goes to its owner (placed by dataset and index), which asks the
        // dataset's home for its generation and stores it under the dataset's path (its class
        // and limits); anything else to the path's primary owner.
        const owner = part
          ? ctx.homes.partitionOwnerElsewhere(call, path, part.index)
          : ctx.owners.primaryElsewhere(call, path);
        if (owner) {
          annotate(() => ({ 'tierflight.path': path, 'tierflight.forwarded_to': owner.name }));
          await ctx.owners.forwardPut(call, owner, msg, incoming);
          call.end();
          return 'OK';
        }
        // A partition's generation is asked for once its schema message is known to be one.
        const place = part
          ? async () => {
              const generation = await ctx.homes.begin(path, part.index, part.count, msg.header);
              partition = { dataset: path, generation, ...part };
              return partitionPath(path, generation, part.index, part.count);
            }
          : undefined;
        session = await startPut(call, manager, msg, path, validator, place);
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
    // The commit tells the reservations (the storage's landing hook): waiters answer, and
    // the owner's reservation goes (a failed put keeps it).
    const committed = await session.commit();
    annotate(() => ({
      'tierflight.path': committed.path,
      'tierflight.class': committed.cls.config.name,
      'tierflight.bytes': committed.totalBytes,
      'tierflight.records': committed.totalRecords,
      'tierflight.batches': committed.batchCount,
    }));
    // A dataset's partition: the dataset becomes visible once every partition of its generation has.
    if (partition) {
      const { dataset, generation, index: i, count } = partition;
      await ctx.homes.landed(dataset, generation, i, count, factsOf(committed)).catch((err: unknown) => {
        // The home did not hear of it: the partition would never be read; it goes, and the writer hears why.
        manager.delete(committed.path);
        throw err;
      });
    }
    ctx.owners.replicate(committed);
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
  path: FlightPath,
  validator: MessageChecker,
  /** Where it is stored, once the schema message is checked, when that is not `path` (a dataset's partition). */
  place?: () => Promise<FlightPath>,
): Promise<PutSession> {
  if (first.header.length === 0)
    throw new InvalidArgumentError(`flight "${path}": the first DoPut message carries no schema`);
  const info = checkIpc(path, () => validator.message(0, first.header, bodyOf(first)));
  if (info.type !== MessageType.Schema) {
    throw new InvalidArgumentError(
      `flight "${path}": message 0 breaks the IPC rule "schema-first": the first DoPut message must be a Schema, got message type ${info.type}`,
    );
  }
  const identity = copiedVersion(call);
  const session = await manager.beginPut(place ? await place() : path, {
    sizeHint: sizeHint(call),
    owner: ownerOf(call),
    ...(identity ? { identity } : {}),
  });
  try {
    await session.setSchema(first.header);
  } catch (err) {
    await session.abort();
    throw err;
  }
  return session;
}

/** The flight the first DoPut message's descriptor names, or INVALID_ARGUMENT saying what is wrong with it. */
function descriptorPath(first: FlightDataFrame, call: ServerDuplexStream<unknown, unknown>): FlightPath {
  const d = first.descriptor;
  if (!d) throw new InvalidArgumentError('the first DoPut message must carry a FlightDescriptor with the schema');
  if (d.type !== DescriptorType.PATH) {
    throw new InvalidArgumentError(
      `Tierflight stores flights under PATH descriptors; got descriptor type ${describeType(d.type)}`,
    );
  }
  // Another node copies a dataset's partition under its own path (a replica, a handover).
  const joined = d.path.join('/');
  if (call.metadata.get(FROM_NODE_HEADER).length > 0 && partitionOf(joined)) return storedPath(joined);
  return flightPath(d.path);
}

function toFrame(msg: FlightDataFrame, path: string, validator: MessageChecker, index: number): Frame | undefined {
  if (msg.header.length === 0) {
    if (bodyLength(msg) > 0)
      throw new InvalidArgumentError(`flight "${path}": message ${index} has a body but no data_header`);
    return undefined; // metadata-only message: acknowledged, nothing to store
  }
  const info = checkIpc(path, () => validator.message(index, msg.header, bodyOf(msg)));
  const frame = {
    kind: info.type === MessageType.RecordBatch ? ('batch' as const) : ('dictionary' as const),
    header: msg.header,
    appMetadata: msg.appMetadata,
    ...(msg.prefixed ? { prefixed: msg.prefixed, prefixedRest: msg.prefixedRest } : {}),
    rows: info.rows,
  };
  return withBodyOf(frame, msg);
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

/** A copy another node makes (replica, handover): the version it copies, kept as is. */
function copiedVersion(call: ServerDuplexStream<unknown, unknown>): VersionIdentity | undefined {
  const raw = call.metadata.get(VERSION_HEADER)[0];
  if (raw === undefined || call.metadata.get(FROM_NODE_HEADER).length === 0) return undefined;
  let doc: Partial<VersionIdentity>;
  try {
    doc = JSON.parse(raw.toString()) as Partial<VersionIdentity>;
  } catch {
    throw new InvalidArgumentError(`${VERSION_HEADER} must be JSON`);
  }
  const time = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
  if (typeof doc.tag !== 'string' || !time(doc.createdAt) || !time(doc.firstCreatedAt)) {
    throw new InvalidArgumentError(`${VERSION_HEADER} needs a tag, createdAt and firstCreatedAt`);
  }
  if (doc.expiresAt !== undefined && !time(doc.expiresAt))
    throw new InvalidArgumentError(`${VERSION_HEADER}: bad expiresAt`);
  return {
    tag: doc.tag,
    createdAt: doc.createdAt,
    firstCreatedAt: doc.firstCreatedAt,
    ...(doc.expiresAt !== undefined ? { expiresAt: doc.expiresAt } : {}),
    ...(typeof doc.owner === 'string' ? { owner: doc.owner } : {}),
  };
}

/** The partition a put writes (`x-tierflight-partition: <i>/<n>`), if it names one. */
function partitionHeader(call: ServerDuplexStream<unknown, unknown>): { index: number; count: number } | undefined {
  const raw = call.metadata.get(PARTITION_HEADER)[0];
  return raw === undefined ? undefined : parsePartition(raw.toString());
}

function ownerOf(call: ServerDuplexStream<unknown, unknown>): string | undefined {
  const raw = call.metadata.get(OWNER_HEADER)[0];
  if (raw === undefined) return undefined;
  const owner = raw.toString();
  if (owner.length === 0 || owner.length > 256) {
    throw new InvalidArgumentError(`${OWNER_HEADER} must be 1 to 256 characters`);
  }
  return owner;
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

function describeType(type: number): string {
  return type === DescriptorType.CMD ? 'CMD' : type === DescriptorType.UNKNOWN ? 'UNKNOWN' : String(type);
}
