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

export class TierflightError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

export class NotFoundError extends TierflightError {
  constructor(message: string) {
    super('NOT_FOUND', message);
  }
}

export class InvalidArgumentError extends TierflightError {
  constructor(message: string) {
    super('INVALID_ARGUMENT', message);
  }
}

export class ResourceExhaustedError extends TierflightError {
  constructor(message: string) {
    super('RESOURCE_EXHAUSTED', message);
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
  constructor(message: string) {
    super('UNAVAILABLE', message);
  }
}

/** No or bad credentials, or an expired token. */
export class UnauthenticatedError extends TierflightError {
  constructor(message: string) {
    super('UNAUTHENTICATED', message);
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
