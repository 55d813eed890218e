import { errors, jwtVerify, SignJWT } from 'jose';

const ISSUER = 'tierflight';

/** Why a token was refused, for the failure counter (never the token itself). */
export type TokenFailure = 'expired_token' | 'bad_token';

export class TokenError extends Error {
  constructor(readonly reason: TokenFailure) {
    super(
      reason === 'expired_token' ? 'the bearer token has expired: Handshake again' : 'the bearer token is not valid',
    );
  }
}

/**
 * Bearer tokens: JWTs signed with HS256 under `auth.tokenSecret` (jose), naming the user
 * (`sub`) and expiring after `auth.tokenTtl`. Every node sharing the secret accepts them.
 */
export class TokenSigner {
  private readonly key: Uint8Array;

  constructor(
    secret: string,
    private readonly ttlMs: number,
  ) {
    this.key = new TextEncoder().encode(secret);
  }

  sign(user: string, now = Date.now()): Promise<string> {
    const iat = Math.floor(now / 1000);
    return new SignJWT({})
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(user)
      .setIssuer(ISSUER)
      .setIssuedAt(iat)
      .setExpirationTime(iat + Math.max(1, Math.round(this.ttlMs / 1000)))
      .sign(this.key);
  }

  /** The user a token names; TokenError when it is malformed, tampered with, or expired. */
  async verify(token: string): Promise<string> {
    try {
      const { payload } = await jwtVerify(token, this.key, { issuer: ISSUER, algorithms: ['HS256'] });
      if (typeof payload.sub !== 'string') throw new TokenError('bad_token');
      return payload.sub;
    } catch (err) {
      if (err instanceof TokenError) throw err;
      throw new TokenError(err instanceof errors.JWTExpired ? 'expired_token' : 'bad_token');
    }
  }
}
