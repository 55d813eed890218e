/**
 * Tierflight's error vocabulary. Code below the Flight service throws these; only the
 * Flight edge (flight/status.ts) turns a code into a gRPC status, so storage and policy
 * stay testable without gRPC.
 */
export type ErrorCode =
  | 'NOT_FOUND'
  | 'INVALID_ARGUMENT'
  | 'RESOURCE_EXHAUSTED'
  | 'UNAVAILABLE'
  | 'UNAUTHENTICATED'
  | 'PERMISSION_DENIED'
  | 'CANCELLED'
  | 'UNIMPLEMENTED'
  | 'INTERNAL';

/**
 * What a client should do after an error (DESIGN §9), sent in the trailer
 * `x-tierflight-retry` and in words at the end of the message: try the same call `here`
 * again (after `afterMs` when waiting helps: a server still starting, a full tier, too many
 * waiters, a store that is down), on an `other` node (this one does not hold the flight,
 * or is leaving), or `never` (the same call fails the same way until something else
 * changes: a bad request, a missing flight, a limit that rejects).
 */
export type RetryHint =
  { readonly where: 'here'; readonly afterMs?: number } | { readonly where: 'other' } | { readonly where: 'never' };

export const RETRY_TRAILER = 'x-tierflight-retry';

export const retryHere = (afterMs?: number): RetryHint =>
  afterMs === undefined ? { where: 'here' } : { where: 'here', afterMs };
export const RETRY_OTHER: RetryHint = { where: 'other' };
export const RETRY_NEVER: RetryHint = { where: 'never' };

/** The hint an error of this code carries unless its thrower knows better; none for INTERNAL and CANCELLED. */
export function defaultRetry(code: ErrorCode): RetryHint | undefined {
  switch (code) {
    case 'UNAVAILABLE':
    case 'RESOURCE_EXHAUSTED':
      return retryHere(1000);
    case 'INTERNAL':
    case 'CANCELLED':
      return undefined;
    default:
      return RETRY_NEVER;
  }
}

/** The trailer's value: `here`, `here;after=<ms>`, `other` or `never`. */
export function formatRetry(hint: RetryHint): string {
  return hint.where === 'here' && hint.afterMs !== undefined ? `here;after=${hint.afterMs}` : hint.where;
}

/** A trailer's value read back; undefined for anything else. */
export function parseRetry(value: string | undefined): RetryHint | undefined {
  if (value === undefined) return undefined;
  const m = /^(here|other|never)(?:;after=(\d{1,9}))?$/.exec(value.trim());
  if (!m) return undefined;
  if (m[1] === 'here') return retryHere(m[2] === undefined ? undefined : Number(m[2]));
  if (m[2] !== undefined) return undefined;
  return m[1] === 'other' ? RETRY_OTHER : RETRY_NEVER;
}

/** A wait in words: `1 s`, `250 ms`. */
export const formatDelay = (ms: number): string => (ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`);

/** The hint in words, as the end of an error message says it. */
export function retryWords(hint: RetryHint): string {
  if (hint.where === 'other') return 'retry on another node';
  if (hint.where === 'never') return 'retrying the same call will not help';
  return hint.afterMs === undefined ? 'retry now' : `retry in ${formatDelay(hint.afterMs)}`;
}

/**
 * How long to wait before trying the same call again, for a caller that follows hints
 * and waits at most `maxMs`: the hint's delay (0 when it gives none) when it says `here`,
 * else undefined (do not retry).
 */
export function retryDelay(hint: RetryHint | undefined, maxMs: number): number | undefined {
  if (hint?.where !== 'here') return undefined;
  const wait = hint.afterMs ?? 0;
  return wait <= maxMs ? wait : undefined;
}

const WORDS_AT_END = / \[(retry on another node|retrying the same call will not help|retry now|retry in \d+ m?s)\]$/;

/** A message with its hint in words at the end: `… [retry in 1 s]`. */
export function withRetryWords(message: string, hint: RetryHint | undefined): string {
  return hint === undefined ? message : `${withoutRetryWords(message)} [${retryWords(hint)}]`;
}

/** A message without the hint words a server put at its end (to say it again without repeating them). */
export function withoutRetryWords(message: string): string {
  return message.replace(WORDS_AT_END, '');
}

export class TierflightError extends Error {
  readonly code: ErrorCode;
  /** What the client should do next; by default the one its code implies (`defaultRetry`). */
  readonly retry: RetryHint | undefined;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; retry?: RetryHint }) {
    super(message, options);
    this.code = code;
    this.retry = options?.retry ?? defaultRetry(code);
    this.name = new.target.name;
  }
}

export class NotFoundError extends TierflightError {
  constructor(message: string, retry?: RetryHint) {
    super('NOT_FOUND', message, { retry });
  }
}

export class InvalidArgumentError extends TierflightError {
  constructor(message: string) {
    super('INVALID_ARGUMENT', message);
  }
}

export class ResourceExhaustedError extends TierflightError {
  constructor(message: string, retry?: RetryHint) {
    super('RESOURCE_EXHAUSTED', message, { retry });
  }
}

export class UnimplementedError extends TierflightError {
  constructor(message: string) {
    super('UNIMPLEMENTED', message);
  }
}

export function isTierflightError(err: unknown): err is TierflightError {
  return err instanceof TierflightError;
}

/** The durable store cannot be reached (a strong put, a restore). */
export class UnavailableError extends TierflightError {
  constructor(message: string, retry?: RetryHint) {
    super('UNAVAILABLE', message, { retry });
  }
}

/** No or bad credentials, or an expired token. */
export class UnauthenticatedError extends TierflightError {
  constructor(message: string, retry?: RetryHint) {
    super('UNAUTHENTICATED', message, { retry });
  }
}

/** Authenticated, but without the access the path needs. */
export class PermissionDeniedError extends TierflightError {
  constructor(message: string) {
    super('PERMISSION_DENIED', message);
  }
}

/** The work ended before it finished: the client went away, or what it worked on did. */
export class CancelledError extends TierflightError {
  constructor(message: string) {
    super('CANCELLED', message);
  }
}
