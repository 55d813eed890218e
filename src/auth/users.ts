import type { AuthConfig } from '../config/schema.js';
import type { Logger } from '../core/log.js';
import { UnauthenticatedError } from '../errors.js';
import type { Authenticator, CallCredentials, Identity } from './authenticator.js';
import { verifyPassword } from './passwords.js';
import { Permissions } from './permissions.js';
import { NODE_PREFIX, ON_BEHALF_HEADER } from './node-credential.js';
import { TokenError, TokenSigner } from './tokens.js';

/** Why a call was not authenticated, for `tierflight_auth_failures_total{reason}`. */
export type AuthFailure =
  | 'no_credentials'
  | 'bad_header'
  | 'unknown_user'
  | 'bad_password'
  | 'bad_token'
  | 'expired_token'
  | 'unknown_certificate';

interface User {
  name: string;
  passwordHash: string | undefined;
  identity: Identity;
}

/**
 * Authentication against the configured users (DESIGN §7), the way Flight clients speak
 * it: `Handshake` with `authorization: Basic base64(user:password)` (padded or not, as
 * arrow-go sends it) answers `authorization: Bearer <token>`; later calls send that token.
 * Over mutual TLS, a verified client certificate whose subject is a user's `certSubject`
 * is that user without a password. Failures are counted by reason and logged with the
 * user name and peer when known, never with a password or token.
 */
export class UsersAuthenticator implements Authenticator {
  private readonly users = new Map<string, User>();
  private readonly bySubject = new Map<string, User>();
  private readonly tokens: TokenSigner;

  constructor(
    config: AuthConfig,
    private readonly log: Logger,
    private readonly failed: (reason: AuthFailure) => void = () => undefined,
  ) {
    this.tokens = new TokenSigner(config.tokenSecret, config.tokenTtl);
    for (const u of config.users) {
      const permissions = new Permissions(u.permissions);
      const user: User = {
        name: u.name,
        passwordHash: u.passwordHash,
        identity: { user: u.name, anonymous: false, can: (path, access) => permissions.can(path, access) },
      };
      this.users.set(u.name, user);
      if (u.certSubject !== undefined) this.bySubject.set(normaliseSubject(u.certSubject), user);
    }
  }

  async handshake(call: CallCredentials): Promise<{ identity: Identity; responseHeaders: Record<string, string> }> {
    const header = call.headers('authorization');
    let identity: Identity;
    if (header === undefined) identity = this.byCertificate(call);
    else {
      const [scheme, value] = splitScheme(header);
      if (scheme === 'basic') identity = await this.byPassword(value);
      else if (scheme === 'bearer') identity = await this.byToken(value);
      else throw this.fail('bad_header', 'authorization must be "Basic <base64 user:password>" or "Bearer <token>"');
    }
    const token = await this.tokens.sign(identity.user);
    return { identity, responseHeaders: { authorization: `Bearer ${token}` } };
  }

  async authenticate(call: CallCredentials): Promise<Identity> {
    const header = call.headers('authorization');
    if (header === undefined) return this.byCertificate(call);
    const [scheme, value] = splitScheme(header);
    if (scheme !== 'bearer')
      throw this.fail('bad_header', 'calls carry "authorization: Bearer <token>" from Handshake');
    const identity = await this.byToken(value);
    // Another node calling on a user's behalf (DESIGN §8): the call has that user's rights.
    const onBehalf = call.headers(ON_BEHALF_HEADER);
    if (onBehalf === undefined || !identity.user.startsWith(NODE_PREFIX)) return identity;
    const user = this.users.get(onBehalf);
    if (!user) throw this.fail('unknown_user', 'a node called for a user that does not exist', { user: onBehalf });
    return user.identity;
  }

  private byCertificate(call: CallCredentials): Identity {
    if (call.certSubject === undefined) {
      throw this.fail(
        'no_credentials',
        'no credentials: Handshake with authorization: Basic, then send the bearer token',
      );
    }
    const user = this.bySubject.get(normaliseSubject(call.certSubject));
    if (!user)
      throw this.fail('unknown_certificate', 'no user has this client certificate', { subject: call.certSubject });
    return user.identity;
  }

  private async byPassword(encoded: string): Promise<Identity> {
    const decoded = decodeBase64(encoded);
    const colon = decoded?.indexOf(':') ?? -1;
    if (decoded === undefined || colon <= 0)
      throw this.fail('bad_header', 'Basic credentials must be base64 of user:password');
    const name = decoded.slice(0, colon);
    const user = this.users.get(name);
    // Unknown users cost a hash check too, so timing does not tell which names exist.
    const ok = await verifyPassword(user?.passwordHash ?? DUMMY_HASH, decoded.slice(colon + 1));
    if (!user) throw this.fail('unknown_user', 'wrong user name or password', { user: name });
    if (!ok || user.passwordHash === undefined) {
      throw this.fail('bad_password', 'wrong user name or password', { user: name });
    }
    return user.identity;
  }

  private async byToken(token: string): Promise<Identity> {
    let name: string;
    try {
      name = await this.tokens.verify(token);
    } catch (err) {
      if (err instanceof TokenError) throw this.fail(err.reason, err.message);
      throw err;
    }
    // A cluster node's own credential (node-credential.ts): every right, like the secret it is signed with.
    if (name.startsWith(NODE_PREFIX)) return { user: name, anonymous: false, can: () => true };
    const user = this.users.get(name);
    if (!user) throw this.fail('unknown_user', 'the token names a user that no longer exists', { user: name });
    return user.identity;
  }

  private fail(reason: AuthFailure, message: string, fields: Record<string, string> = {}): UnauthenticatedError {
    this.failed(reason);
    this.log.warn({ reason, ...fields }, 'authentication failed');
    return new UnauthenticatedError(message);
  }
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

/** `CN=ops, O=Example` and `O=Example,CN=ops` name the same subject. */
export function normaliseSubject(subject: string): string {
  return subject
    .split(/,\s*(?=[A-Za-z.0-9]+=)/)
    .map((part) => part.trim())
    .filter((part) => part.length > 0)
    .sort()
    .join(',');
}
