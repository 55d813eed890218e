import { inSpan } from '../../core/trace.js';
import type { Metadata } from '@grpc/grpc-js';
import { CancelledError, InvalidArgumentError } from '../../errors.js';
import type { FlightPath } from '../../core/path.js';
import { cancelSignal, type RpcContext } from '../call.js';
import { identityOf } from '../guard.js';

/** A request header: wait up to this many ms for an absent but reserved flight (DESIGN §6). */
export const WAIT_HEADER = 'x-tierflight-wait-ms';

export { DEFAULT_POLL_WAIT_MS } from '../cluster-port.js';

/** The `x-tierflight-wait-ms` header's value, if given; INVALID_ARGUMENT unless a whole number of ms. */
export function waitMsOf(metadata: Metadata): number | undefined {
  const raw = metadata.get(WAIT_HEADER)[0];
  if (raw === undefined) return undefined;
  const text = raw.toString();
  if (!/^\d{1,10}$/.test(text))
    throw new InvalidArgumentError(`${WAIT_HEADER} must be a whole number of milliseconds, got "${text}"`);
  return Number(text);
}

/**
 * Before a read that asked to wait: if the flight is absent and its path reserved, waits
 * for it to land (or the wait, the reservation or the client to end). The read then
 * answers as usual.
 */
export async function waitIfReserved(
  ctx: RpcContext,
  path: FlightPath,
  call: NodeJS.EventEmitter & { cancelled: boolean; metadata: Metadata },
  waitMs = waitMsOf(call.metadata),
): Promise<void> {
  if (waitMs === undefined || (await ctx.manager.known(path))) return;
  const identity = identityOf(call);
  const user = identity.anonymous ? undefined : identity.user;
  const outcome = await inSpan('reservation wait', { 'tierflight.path': path, 'tierflight.wait_ms': waitMs }, () =>
    ctx.reservations.waitFor(path, waitMs, cancelSignal(call), user),
  );
  if (outcome === 'ended') throw new CancelledError(`the wait for flight "${path}" was ended by CancelFlightInfo`);
}
