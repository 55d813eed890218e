import { errors, jwtVerify, SignJWT } from 'jose';

const ISSUER = 'tierflight';

/** Why a token was refused, for the failure counter (never the token itself). */
export type TokenFailure = 'expired_token' | 'session_expired' | 'bad_token';

const MESSAGES: Record<TokenFailure, string> = {
  expired_token: 'the bearer token has expired: Handshake again',
  session_expired: 'the session is over (auth.sessionMax since the login): log in again with a password or certificate',
  bad_token: 'the bearer token is not valid',
};

export class TokenError extends Error {
  constructor(readonly reason: TokenFailure) {
    super(MESSAGES[reason]);
  }
}

/** What a token says beyond its signature. */
export interface TokenClaims {
  user: string;
  /**
   * When the session began: the login with a password or a certificate (seconds since the
   * epoch). A renewal through Handshake keeps it, so no renewal outlives `auth.sessionMax`.
   */
  authTime: number;
  /** The user's credential generation when the token was signed (revocation, see UsersAuthenticator). */
  generation: string | undefined;
}

/**
 * Bearer tokens: JWTs signed with HS256 under `auth.tokenSecret` (jose), naming the user
 * (`sub`), the session's start (`auth_time`) and the user's credential generation (`gen`),
 * expiring `auth.tokenTtl` after signing and never after `auth_time + auth.sessionMax`.
 * Every node sharing the secret accepts them. A token without `exp` is refused.
 */
export class TokenSigner {
  private readonly key: Uint8Array;

  constructor(
    secret: string,
    private readonly ttlMs: number,
    private readonly sessionMaxMs = Number.POSITIVE_INFINITY,
  ) {
    this.key = new TextEncoder().encode(secret);
  }

  sign(claims: Omit<TokenClaims, 'authTime'> & { authTime?: number }, now = Date.now()): Promise<string> {
    const iat = Math.floor(now / 1000);
    const authTime = claims.authTime ?? iat;
    const ttl = Math.max(1, Math.round(this.ttlMs / 1000));
    const sessionEnd = authTime + Math.max(1, Math.round(Math.min(this.sessionMaxMs, 2 ** 40) / 1000));
    return new SignJWT({ auth_time: authTime, ...(claims.generation !== undefined ? { gen: claims.generation } : {}) })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(claims.user)
      .setIssuer(ISSUER)
      .setIssuedAt(iat)
      .setExpirationTime(Math.min(iat + ttl, sessionEnd))
      .sign(this.key);
  }

  /** What a token says; TokenError when it is malformed, tampered with, without `exp`, or expired. */
  async verify(token: string): Promise<TokenClaims> {
    try {
      const { payload } = await jwtVerify(token, this.key, {
        issuer: ISSUER,
        algorithms: ['HS256'],
        requiredClaims: ['exp', 'iat', 'sub'],
      });
      const authTime = payload.auth_time ?? payload.iat;
      if (typeof payload.sub !== 'string' || typeof authTime !== 'number') throw new TokenError('bad_token');
      const generation = typeof payload.gen === 'string' ? payload.gen : undefined;
      return { user: payload.sub, authTime, generation };
    } catch (err) {
      if (err instanceof TokenError) throw err;
      if (!(err instanceof errors.JWTExpired)) throw new TokenError('bad_token');
      // Expired at its session's end (not tokenTtl after signing): renewing cannot help.
      const { exp, auth_time: authTime } = err.payload;
      const atSessionEnd =
        typeof exp === 'number' &&
        typeof authTime === 'number' &&
        exp >= authTime + Math.round(Math.min(this.sessionMaxMs, 2 ** 40) / 1000);
      throw new TokenError(atSessionEnd ? 'session_expired' : 'expired_token');
    }
  }
}
