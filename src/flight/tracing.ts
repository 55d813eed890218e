import type { Metadata, ServiceError } from '@grpc/grpc-js';
import type { TextMapGetter } from '@opentelemetry/api';
import { runIn, serverSpan } from '../core/trace.js';
import { GrpcStatus, statusName } from './status.js';

const SERVICE = 'arrow.flight.protocol.FlightService';

/** Reads W3C trace context (and anything else a propagator asks for) from a call's headers. */
const metadataGetter: TextMapGetter<Metadata> = {
  keys: (md) => Object.keys(md.getMap()),
  get: (md, key) => {
    const values = md.get(key);
    return values.length === 0 ? undefined : values.map((v) => v.toString());
  },
};

type Call = NodeJS.EventEmitter & { metadata: Metadata; getPeer?: () => string };
type Callback = (err: Partial<ServiceError> | null, value?: unknown, ...rest: unknown[]) => void;

/**
 * Runs a handler inside a server span for its call (when tracing is on): `traceparent` from
 * the call's headers is its parent, the span ends with the call's status — a unary call's
 * through its callback, a streaming call's when its stream finishes, fails or is cancelled.
 */
export function traced(
  method: string,
  call: Call,
  callback: Callback | undefined,
  run: (callback: Callback | undefined) => void,
): void {
  const rpc = serverSpan(`${SERVICE}/${method}`, call.metadata, metadataGetter, {
    'rpc.system': 'grpc',
    'rpc.service': SERVICE,
    'rpc.method': method,
    ...(call.getPeer ? { 'network.peer.address': call.getPeer() } : {}),
  });
  if (!rpc) {
    run(callback);
    return;
  }
  const end = (err: Partial<ServiceError> | null | undefined): void => {
    const code = err?.code ?? GrpcStatus.OK;
    rpc.end({ code, name: statusName(code), message: err?.details });
  };
  if (callback) {
    runIn(rpc.context, () =>
      run((err, ...rest) => {
        end(err);
        callback(err, ...rest);
      }),
    );
    return;
  }
  let failure: Partial<ServiceError> | undefined;
  call.on('error', (err: Partial<ServiceError>) => (failure = err));
  call.once('finish', () => end(failure));
  call.once('cancelled', () => end({ code: GrpcStatus.CANCELLED }));
  call.once('close', () => end(failure));
  runIn(rpc.context, () => run(undefined));
}
