import type { Access } from '../config/schema.js';
import type { SubjectAttribute } from '../core/distinguished-name.js';

/**
 * The authentication seam (DESIGN §7): the Flight edge asks an Authenticator who each call
 * is, handing it the call's headers through a lookup function and the client
 * certificate's subject, so this folder never sees gRPC. Without `auth` in the config
 * everyone is `anonymous` and may do everything (noAuthentication); with it, users
 * authenticate with a password or a client certificate, calls carry bearer tokens, and
 * permissions per path prefix say what each user may do.
 */

/** Who a call is, and what it may do where. */
export interface Identity {
  readonly user: string;
  readonly anonymous: boolean;
  /**
   * The call was made by a cluster node (with its node credential), possibly for a user
   * whose rights it then has: only such calls may carry the headers nodes send each other.
   */
  readonly node: boolean;
  /** Whether this identity has `access` on `path` (a normalised flight path or prefix). */
  can(path: string, access: Access): boolean;
}

/** A request header's first value by its lowercase name, or undefined. */
export type HeaderLookup = (name: string) => string | undefined;

/** What a call presents: its headers, and over mutual TLS the verified client certificate's subject. */
export interface CallCredentials {
  headers: HeaderLookup;
  /** The subject of a client certificate the TLS layer verified, attribute by attribute. */
  certSubject?: SubjectAttribute[] | undefined;
  /** The client's address (`ipv4:127.0.0.1:50000`), for throttling and the log. */
  peer?: string | undefined;
}

export interface Authenticator {
  /**
   * Answers a Flight `Handshake`: checks the credentials it presents and returns who it is,
   * with the headers to send back (`authorization: Bearer <token>`). Throws
   * UnauthenticatedError for bad credentials.
   */
  handshake(call: CallCredentials): Promise<{ identity: Identity; responseHeaders: Record<string, string> }>;
  /** Who any other call is; throws UnauthenticatedError when it may not proceed. */
  authenticate(call: CallCredentials): Promise<Identity>;
}

export const ANONYMOUS: Identity = { user: 'anonymous', anonymous: true, node: false, can: () => true };

/** No authentication configured: every call is `anonymous` and may do everything. */
export const noAuthentication: Authenticator = {
  handshake: () => Promise.resolve({ identity: ANONYMOUS, responseHeaders: {} }),
  authenticate: () => Promise.resolve(ANONYMOUS),
};

/** The authenticator in force, replaced when a config reload changes `auth`. */
export class SwitchableAuthenticator implements Authenticator {
  constructor(public current: Authenticator) {}

  handshake(call: CallCredentials): ReturnType<Authenticator['handshake']> {
    return this.current.handshake(call);
  }

  authenticate(call: CallCredentials): Promise<Identity> {
    return this.current.authenticate(call);
  }
}
