import { NotFoundError } from '../../errors.js';
import { flightPath, type FlightPath } from '../../core/path.js';
import {
  CancelStatus,
  decodeCancelRequest,
  decodeCancelResult,
  decodeRenewRequest,
  encodeCancelResult,
  encodeEndpoint,
  type CancelStatusValue,
} from '../protocol-messages.js';
import { decodeTicket } from '../ticket.js';
import { DescriptorType } from '../flight-data-codec.js';
import type { ActionContext, ActionVerb } from './registry.js';
import { InvalidArgumentError } from '../../errors.js';

/**
 * The Flight protocol's standard actions, named and encoded as the protocol fixes them
 * (request and result bodies are protobuf), so any Flight client's helpers for them work.
 */

/** The path a ticket names, normalised. */
function ticketPath(raw: Buffer): FlightPath {
  return flightPath(decodeTicket(raw).path);
}

/** The path a CancelFlightInfo's FlightInfo describes. */
function infoPath(body: Buffer): FlightPath {
  const descriptor = decodeCancelRequest(body).info.flight_descriptor;
  if (descriptor.type !== 'PATH' && descriptor.type !== DescriptorType.PATH) {
    throw new InvalidArgumentError('CancelFlightInfo: Tierflight flights are named by PATH descriptors');
  }
  return flightPath(descriptor.path);
}

export const renewFlightEndpointVerb: ActionVerb = {
  type: 'RenewFlightEndpoint',
  description:
    "The Flight protocol's RenewFlightEndpoint: the endpoint's ticket is honoured server.ticketGrace from now " +
    '(even if its flight is replaced meanwhile). Body: RenewFlightEndpointRequest (protobuf). ' +
    'Result: the FlightEndpoint with its new expiration_time.',
  permission: 'read',
  target: (body) => ticketPath(decodeRenewRequest(body).endpoint.ticket.ticket),
  // In a cluster the version may live on the path's other owners: one of them renews it.
  askOwnersOnNotFound: true,
  async *run(body, context) {
    const { endpoint } = decodeRenewRequest(body);
    const ticket = decodeTicket(endpoint.ticket.ticket);
    const path = ticketPath(endpoint.ticket.ticket);
    const { until } = await context.manager.renewTickets(path, ticket.version);
    yield encodeEndpoint({
      ...endpoint,
      expiration_time: { seconds: Math.floor(until / 1000), nanos: (until % 1000) * 1_000_000 },
    });
  },
};

/** This node's part of a cancel: NOT_CANCELLABLE for a landed flight, CANCELLED for a reserved one. */
async function cancelHere(path: FlightPath, context: ActionContext): Promise<CancelStatusValue | undefined> {
  const { manager, reservations, log, peer, user } = context;
  if (manager.has(path)) return CancelStatus.NOT_CANCELLABLE;
  const ended = reservations.endWaits(path);
  const reserved = (await reservations.holder(path).catch(() => undefined)) !== undefined;
  if (ended === 0 && !reserved) return undefined;
  log.info({ action: 'CancelFlightInfo', path, waitsEnded: ended, peer, user }, 'CancelFlightInfo');
  return CancelStatus.CANCELLED;
}

export const cancelFlightInfoVerb: ActionVerb = {
  type: 'CancelFlightInfo',
  description:
    "The Flight protocol's CancelFlightInfo. A landed flight is stored data: NOT_CANCELLABLE. A path reserved and " +
    'not landed yet: every call waiting for it (x-tierflight-wait-ms, PollFlightInfo) ends with CANCELLED, and so ' +
    'does the result; the reservation stays with its owner. Body: CancelFlightInfoRequest (protobuf). ' +
    'Result: CancelFlightInfoResult.',
  permission: 'write',
  target: infoPath,
  async *run(body, context) {
    const path = infoPath(body);
    const status = await cancelHere(path, context);
    if (status === undefined)
      throw new NotFoundError(`CancelFlightInfo: flight "${path}" is neither stored nor reserved`);
    yield encodeCancelResult(status);
  },
  // Waits may be on any node (each answers its own clients' DoGet waits): every member
  // cancels its own; NOT_CANCELLABLE wins (the flight landed somewhere), then CANCELLED.
  clusterWide: (results) => {
    const statuses = results.map(decodeCancelResult);
    return encodeCancelResult(
      statuses.includes(CancelStatus.NOT_CANCELLABLE) ? CancelStatus.NOT_CANCELLABLE : CancelStatus.CANCELLED,
    );
  },
};
