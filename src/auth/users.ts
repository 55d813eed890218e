import { createHash } from 'node:crypto';
import type { AuthConfig } from '../config/schema.js';
import type { Logger } from '../core/log.js';
import { parseDistinguishedName, subjectKey } from '../core/distinguished-name.js';
import { retryHere, UnauthenticatedError, type RetryHint } from '../errors.js';
import type { Authenticator, CallCredentials, Identity } from './authenticator.js';
import { LoginThrottle } from './login-throttle.js';
import { verifyPassword } from './passwords.js';
import { Permissions } from './permissions.js';
import { NODE_PREFIX, ON_BEHALF_HEADER } from './node-credential.js';
import { TokenError, TokenSigner, type TokenClaims } from './tokens.js';

/** Why a call was not authenticated, for `tierflight_auth_failures_total{reason}`. */
export type AuthFailure =
  | 'no_credentials'
  | 'bad_header'
  | 'unknown_user'
  | 'bad_password'
  | 'bad_token'
  | 'expired_token'
  | 'revoked_token'
  | 'session_expired'
  | 'throttled'
  | 'unknown_certificate';

interface User {
  name: string;
  passwordHash: string | undefined;
  identity: Identity;
  /**
   * Changes whenever the user's password, certificate subject or permissions change (a hash
   * of them): tokens carry the generation they were signed under, and a token of an older
   * one is refused on every call. Derived from the config, so every node agrees on it.
   */
  generation: string;
}

/**
 * Authentication against the configured users (DESIGN §7), the way Flight clients speak
 * it: `Handshake` with `authorization: Basic base64(user:password)` (padded or not, as
 * arrow-go sends it) answers `authorization: Bearer <token>`; later calls send that token.
 * Over mutual TLS, a verified client certificate whose subject is a user's `certSubject`
 * (compared attribute by attribute) is that user without a password. A Handshake with a
 * bearer token renews it within the session (`auth.sessionMax` from the password or
 * certificate login); a change of the user's credentials or permissions revokes the tokens
 * issued before it. Failed logins are throttled per user name and per address. Failures
 * are counted by reason and logged with the peer, never with a password, a token or an
 * unknown user name (which may be a mistyped password; a hash of it is logged).
 */
export class UsersAuthenticator implements Authenticator {
  private readonly users = new Map<string, User>();
  private readonly bySubject = new Map<string, User>();
  private readonly tokens: TokenSigner;
  private readonly sessionMaxMs: number;

  constructor(
    config: AuthConfig,
    private readonly log: Logger,
    private readonly failed: (reason: AuthFailure) => void = () => undefined,
    private readonly throttle = new LoginThrottle(),
  ) {
    this.sessionMaxMs = config.sessionMax;
    this.tokens = new TokenSigner(config.tokenSecret, config.tokenTtl, config.sessionMax);
    for (const u of config.users) {
      const permissions = new Permissions(u.permissions);
      const user: User = {
        name: u.name,
        passwordHash: u.passwordHash,
        identity: { user: u.name, anonymous: false, node: false, can: (path, access) => permissions.can(path, access) },
        generation: generationOf(u),
      };
      this.users.set(u.name, user);
      if (u.certSubject !== undefined) this.bySubject.set(subjectKey(parseDistinguishedName(u.certSubject)), user);
    }
  }

  async handshake(call: CallCredentials): Promise<{ identity: Identity; responseHeaders: Record<string, string> }> {
    const header = call.headers('authorization');
    let identity: Identity;
    let authTime: number | undefined; // a fresh login: now
    if (header === undefined) identity = this.byCertificate(call);
    else {
      const [scheme, value] = splitScheme(header);
      if (scheme === 'basic') identity = await this.byPassword(value, call.peer);
      else if (scheme === 'bearer') {
        const renewed = await this.byToken(value, call.peer);
        identity = renewed.identity;
        authTime = this.withinSession(renewed.claims, call.peer);
      } else
        throw this.fail(
          'bad_header',
          'authorization must be "Basic <base64 user:password>" or "Bearer <token>"',
          {},
          call.peer,
        );
    }
    const user = this.users.get(identity.user);
    const token = await this.tokens.sign({
      user: identity.user,
      generation: user?.generation,
      ...(authTime !== undefined ? { authTime } : {}),
    });
    return { identity, responseHeaders: { authorization: `Bearer ${token}` } };
  }

  async authenticate(call: CallCredentials): Promise<Identity> {
    const header = call.headers('authorization');
    if (header === undefined) return this.byCertificate(call);
    const [scheme, value] = splitScheme(header);
    if (scheme !== 'bearer')
      throw this.fail('bad_header', 'calls carry "authorization: Bearer <token>" from Handshake', {}, call.peer);
    const { identity } = await this.byToken(value, call.peer);
    // Another node calling on a user's behalf (DESIGN §8): the call has that user's rights.
    const onBehalf = call.headers(ON_BEHALF_HEADER);
    if (onBehalf === undefined || !identity.node) return identity;
    const user = this.users.get(onBehalf);
    if (!user) throw this.fail('unknown_user', 'a node called for a user that does not exist', {}, call.peer);
    return { ...user.identity, node: true };
  }

  /** A renewal's session start, when the session is not over (`auth.sessionMax` since the login). */
  private withinSession(claims: TokenClaims, peer: string | undefined): number {
    const ageMs = Date.now() - claims.authTime * 1000;
    if (ageMs >= this.sessionMaxMs) {
      throw this.fail(
        'session_expired',
        `the session began ${Math.round(ageMs / 1000)} s ago (auth.sessionMax): log in again with a password or certificate`,
        { user: claims.user },
        peer,
      );
    }
    return claims.authTime;
  }

  private byCertificate(call: CallCredentials): Identity {
    if (call.certSubject === undefined) {
      throw this.fail(
        'no_credentials',
        'no credentials: Handshake with authorization: Basic, then send the bearer token',
        {},
        call.peer,
      );
    }
    const user = this.bySubject.get(subjectKey(call.certSubject));
    if (!user)
      throw this.fail(
        'unknown_certificate',
        'no user has this client certificate',
        { subject: subjectKey(call.certSubject) },
        call.peer,
      );
    return user.identity;
  }

  private async byPassword(encoded: string, peer: string | undefined): Promise<Identity> {
    const decoded = decodeBase64(encoded);
    const colon = decoded?.indexOf(':') ?? -1;
    if (decoded === undefined || colon <= 0)
      throw this.fail('bad_header', 'Basic credentials must be base64 of user:password', {}, peer);
    const name = decoded.slice(0, colon);
    const user = this.users.get(name);
    // Who may not try now is refused before any password is checked.
    const wait = await this.throttle.retryAfter(name, peer);
    if (wait > 0) {
      // The hint says when to try again ("[retry in N s]").
      throw this.fail(
        'throttled',
        'too many failed logins for this user or from this address',
        user ? { user: name } : { userHash: nameHash(name) },
        peer,
        retryHere(wait * 1000),
      );
    }
    // Unknown users cost a hash check too, so timing does not tell which names exist.
    const ok = await this.throttle.check(() =>
      verifyPassword(user?.passwordHash ?? DUMMY_HASH, decoded.slice(colon + 1)),
    );
    if (!user || !ok || user.passwordHash === undefined) {
      await this.throttle.failed(name, peer);
      // An unknown name may be a password typed into the user field: only its hash is logged.
      if (!user) throw this.fail('unknown_user', 'wrong user name or password', { userHash: nameHash(name) }, peer);
      throw this.fail('bad_password', 'wrong user name or password', { user: name }, peer);
    }
    await this.throttle.succeeded(name);
    return user.identity;
  }

  private async byToken(token: string, peer: string | undefined): Promise<{ identity: Identity; claims: TokenClaims }> {
    let claims: TokenClaims;
    try {
      claims = await this.tokens.verify(token);
    } catch (err) {
      if (err instanceof TokenError) throw this.fail(err.reason, err.message, {}, peer);
      throw err;
    }
    const name = claims.user;
    // A cluster node's own credential (node-credential.ts): every right, like the secret it is signed with.
    if (name.startsWith(NODE_PREFIX))
      return { identity: { user: name, anonymous: false, node: true, can: () => true }, claims };
    const user = this.users.get(name);
    if (!user) throw this.fail('unknown_user', 'the token names a user that no longer exists', { user: name }, peer);
    if (claims.generation !== user.generation) {
      throw this.fail(
        'revoked_token',
        "the bearer token was revoked: the user's password, certificate or permissions changed; Handshake again",
        { user: name },
        peer,
      );
    }
    return { identity: user.identity, claims };
  }

  private fail(
    reason: AuthFailure,
    message: string,
    fields: Record<string, string>,
    peer: string | undefined,
    retry?: RetryHint,
  ): UnauthenticatedError {
    this.failed(reason);
    this.log.warn({ reason, ...fields, ...(peer !== undefined ? { peer } : {}) }, 'authentication failed');
    return new UnauthenticatedError(message, retry);
  }
}

/** A user's credential generation: a hash of what, when it changes, ends the tokens issued before. */
function generationOf(u: AuthConfig['users'][number]): string {
  const credentials = {
    passwordHash: u.passwordHash ?? null,
    certSubject: u.certSubject === undefined ? null : subjectKey(parseDistinguishedName(u.certSubject)),
    permissions: u.permissions,
  };
  return createHash('sha256').update(JSON.stringify(credentials)).digest('base64url').slice(0, 16);
}

/** What the log says of a user name nobody has: enough to correlate attempts, nothing to read. */
function nameHash(name: string): string {
  return `sha256:${createHash('sha256').update(name).digest('hex').slice(0, 12)}`;
}

/** Never matches: verified against when the user name is unknown (equal cost). */
const DUMMY_HASH = '$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWE';

function splitScheme(header: string): [string, string] {
  const space = header.indexOf(' ');
  if (space < 0) return [header.toLowerCase(), ''];
  return [header.slice(0, space).toLowerCase(), header.slice(space + 1).trim()];
}

/** Base64 with or without padding (arrow-go sends it unpadded), or undefined. */
function decodeBase64(text: string): string | undefined {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length === 0) return undefined;
  return Buffer.from(text, 'base64').toString('utf8');
}
