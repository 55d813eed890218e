import {
  Metadata,
  status,
  type ServiceError,
  type sendUnaryData,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import type { PeerCertificate } from 'node:tls';
import {
  ANONYMOUS,
  type Authenticator,
  type CallCredentials,
  type HeaderLookup,
  type Identity,
} from '../auth/authenticator.js';
import type { Access } from '../config/schema.js';
import { PermissionDeniedError, retryHere, RETRY_NEVER } from '../errors.js';
import type { Logger } from '../core/log.js';
import { certificateAttributes } from '../core/distinguished-name.js';
import { NODE_ONLY_HEADERS } from '../auth/node-credential.js';
import type { Denial } from '../auth/denials.js';
import { hinted, toServiceError } from './status.js';
import { traced } from './tracing.js';

type AnyHandler = (
  call: { emit(event: 'error', err: unknown): boolean; metadata: Metadata; getPeer?: () => string },
  callback?: sendUnaryData<unknown>,
) => void;

/** Who each call is, for the handlers that need it (set by `guard` before they run). */
const identities = new WeakMap<object, Identity>();

export function identityOf(call: object): Identity {
  return identities.get(call) ?? ANONYMOUS;
}

/**
 * Refuses the call unless its identity has `access` on `path` (normalised): PERMISSION_DENIED
 * naming the user, the access and the path.
 */
export function authorize(call: object, path: string, access: Access, denied?: (d: Denial) => void): void {
  const identity = identityOf(call);
  if (identity.can(path, access)) return;
  denied?.({ user: identity.user, access, path: path || '/', peer: (call as { getPeer?: () => string }).getPeer?.() });
  throw new PermissionDeniedError(`user "${identity.user}" needs ${access} access to "${path || '/'}"`);
}

/** What a call presents to the authenticator: headers, and a client certificate grpc-js verified. */
export function credentialsOf(call: {
  metadata: Metadata;
  getAuthContext?: () => { sslPeerCertificate?: PeerCertificate };
  getPeer?: () => string;
}): CallCredentials {
  const cert = call.getAuthContext?.().sslPeerCertificate;
  return {
    headers: headerLookup(call.metadata),
    // Attribute by attribute, never joined: a value may hold commas and equals signs.
    certSubject: cert ? certificateAttributes(cert.subject ?? {}) : undefined,
    peer: call.getPeer?.(),
  };
}

/**
 * A header only cluster nodes may send, sent by a caller that authenticated as a user (not
 * with a node credential). Without authentication every caller is trusted alike.
 */
function nodeHeaderFrom(identity: Identity, metadata: Metadata): string | undefined {
  if (identity.node || identity.anonymous) return undefined;
  return NODE_ONLY_HEADERS.find((header) => metadata.get(header).length > 0);
}

/** A request header's first value, for the authenticator (which never sees gRPC). */
export function headerLookup(metadata: Metadata): HeaderLookup {
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

/** How long a client is told to wait before calling a server that is still starting. */
export const STARTING_RETRY_MS = 1000;

/**
 * Every call passes two checks before its handler runs: the server is ready (until then
 * UNAVAILABLE: it is still wiping tiers and recovering flights), and, for every call but
 * Handshake (which authenticates itself), the authenticator says who the call is or fails
 * it (UNAUTHENTICATED).
 */
export function guard(
  handlers: UntypedServiceImplementation,
  ready: () => boolean,
  authenticator: Authenticator,
  log: Logger,
  denied?: (d: Denial) => void,
): UntypedServiceImplementation {
  const guarded: UntypedServiceImplementation = {};
  for (const [name, handler] of Object.entries(handlers)) {
    const h = handler as unknown as AnyHandler;
    // Every call in a server span when tracing is on (flight/tracing.ts).
    const wrapped: AnyHandler = (call, callback) =>
      traced(name, call as unknown as Parameters<typeof traced>[1], callback as never, (cb) =>
        checked(call, cb as typeof callback),
      );
    const checked: AnyHandler = (call, callback) => {
      if (!ready()) {
        failCall(
          call,
          callback,
          hinted(status.UNAVAILABLE, 'Tierflight is starting (recovering flights)', retryHere(STARTING_RETRY_MS)),
        );
        return;
      }
      if (name === 'Handshake') {
        h(call, callback);
        return;
      }
      authenticator.authenticate(credentialsOf(call)).then(
        (identity) => {
          const forged = nodeHeaderFrom(identity, call.metadata);
          if (forged) {
            denied?.({ user: identity.user, access: `send ${forged}`, path: name, peer: call.getPeer?.() });
            failCall(
              call,
              callback,
              hinted(
                status.PERMISSION_DENIED,
                `user "${identity.user}" may not send ${forged}: it is for calls between cluster nodes`,
                RETRY_NEVER,
              ),
            );
            return;
          }
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
