import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import {
  isTierflightError,
  formatRetry,
  retryHere,
  RETRY_NEVER,
  RETRY_TRAILER,
  withRetryWords,
  type ErrorCode,
  type RetryHint,
} from '../errors.js';
import { DurableStoreError } from '../durable/durable-store.js';
import type { Logger } from '../core/log.js';

/** An error from the operating system (ENOENT, EIO, EMFILE...), as Node reports it. */
function isSystemError(err: unknown): err is NodeJS.ErrnoException {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return err instanceof Error && typeof code === 'string' && /^E[A-Z0-9]+$/.test(code);
}

/**
 * The one table between Tierflight's error codes and gRPC statuses: each code is the
 * status of the same name. `statusName` names any status; `errorCodeOf` reads a status a
 * peer answered with back into a code (a cluster member's answer re-thrown here).
 */
const CODES: Record<ErrorCode, status> = {
  NOT_FOUND: status.NOT_FOUND,
  INVALID_ARGUMENT: status.INVALID_ARGUMENT,
  RESOURCE_EXHAUSTED: status.RESOURCE_EXHAUSTED,
  UNAVAILABLE: status.UNAVAILABLE,
  UNAUTHENTICATED: status.UNAUTHENTICATED,
  PERMISSION_DENIED: status.PERMISSION_DENIED,
  CANCELLED: status.CANCELLED,
  UNIMPLEMENTED: status.UNIMPLEMENTED,
  INTERNAL: status.INTERNAL,
};
const ERROR_CODES = new Map(Object.entries(CODES).map(([code, value]) => [value as number, code as ErrorCode]));
const STATUS_NAMES = new Map(Object.entries(status).map(([name, value]) => [value as number, name]));

/** gRPC status codes by name (OK, NOT_FOUND, PERMISSION_DENIED, ...). */
export const GrpcStatus = status;

/** A gRPC status code's name, e.g. NOT_FOUND (UNKNOWN for none or an unknown number). */
export function statusName(code: number | undefined): string {
  return STATUS_NAMES.get(code ?? status.UNKNOWN) ?? 'UNKNOWN';
}

/**
 * The Tierflight error code of a status a peer answered with: the code of the same name,
 * UNAVAILABLE for DEADLINE_EXCEEDED (the peer did not answer in time), else INTERNAL.
 */
export function errorCodeOf(code: number): ErrorCode {
  if (code === status.DEADLINE_EXCEEDED) return 'UNAVAILABLE';
  return ERROR_CODES.get(code) ?? 'INTERNAL';
}

/** A status with its retry hint: in the `x-tierflight-retry` trailer and in words at the end of the message. */
export function hinted(code: status, details: string, retry: RetryHint | undefined): Partial<ServiceError> {
  const metadata = new Metadata();
  if (retry !== undefined) metadata.set(RETRY_TRAILER, formatRetry(retry));
  return { code, details: withRetryWords(details, retry), metadata };
}

/**
 * The one place where errors become gRPC statuses. Tierflight's own errors carry their
 * code and retry hint. A durable store that fails is UNAVAILABLE (an object that
 * vanished, NOT_FOUND), and so is a storage I/O error (a tier file that cannot be read or
 * written): the client may retry in a second, and the log says what failed. Anything else
 * is a bug: logged in full and reported as INTERNAL, with no hint.
 */
export function toServiceError(err: unknown, log: Logger, method: string): Partial<ServiceError> {
  if (isTierflightError(err)) {
    return hinted(CODES[err.code], err.message, err.retry);
  }
  if (err instanceof DurableStoreError) {
    log.warn({ err: err.message, method, kind: err.kind }, 'durable store failure');
    return err.kind === 'not_found'
      ? hinted(status.NOT_FOUND, `${method}: ${err.message}`, RETRY_NEVER)
      : hinted(status.UNAVAILABLE, `${method}: ${err.message}`, retryHere(1000));
  }
  if (isSystemError(err)) {
    log.error({ err, method }, 'storage I/O failure');
    return hinted(status.UNAVAILABLE, `${method}: storage I/O failed: ${err.message}`, retryHere(1000));
  }
  log.error({ err, method }, 'internal error');
  return {
    code: status.INTERNAL,
    details: `internal error in ${method}: ${(err as Error)?.message ?? String(err)}`,
    metadata: new Metadata(),
  };
}
