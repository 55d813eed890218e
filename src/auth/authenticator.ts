/**
 * The authentication seam (DESIGN §7): the Flight edge asks an Authenticator who each call
 * is, reading the call's headers through a lookup function, so this folder never sees
 * gRPC. The default lets everyone in as `anonymous`; issue 14 brings passwords, tokens and
 * client certificates, and permissions per path prefix.
 */

/** Who a call is. */
export interface Identity {
  readonly user: string;
  readonly anonymous: boolean;
}

/** A request header's first value by its lowercase name, or undefined. */
export type HeaderLookup = (name: string) => string | undefined;

export interface Authenticator {
  /**
   * Answers a Flight `Handshake`: checks the credentials in its headers and returns who
   * it is, with the headers to send back (`authorization: Bearer <token>`). Throws
   * UnauthenticatedError for bad credentials.
   */
  handshake(headers: HeaderLookup): Promise<{ identity: Identity; responseHeaders: Record<string, string> }>;
  /** Who any other call is; throws UnauthenticatedError when it may not proceed. */
  authenticate(headers: HeaderLookup): Promise<Identity>;
}

export const ANONYMOUS: Identity = { user: 'anonymous', anonymous: true };

/** No authentication configured: every call is `anonymous`, every Handshake succeeds. */
export const noAuthentication: Authenticator = {
  handshake: () => Promise.resolve({ identity: ANONYMOUS, responseHeaders: {} }),
  authenticate: () => Promise.resolve(ANONYMOUS),
};
