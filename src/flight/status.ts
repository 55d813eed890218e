import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { isTierflightError, type ErrorCode } from '../errors.js';
import type { Logger } from '../util/log.js';

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

/**
 * The one place where Tierflight errors become gRPC statuses. Anything that is not a
 * TierflightError is a bug: it is logged in full and reported as INTERNAL.
 */
export function toServiceError(err: unknown, log: Logger, method: string): Partial<ServiceError> {
  if (isTierflightError(err)) {
    return { code: CODES[err.code], details: err.message, metadata: new Metadata() };
  }
  log.error({ err, method }, 'internal error');
  return {
    code: status.INTERNAL,
    details: `internal error in ${method}: ${(err as Error)?.message ?? String(err)}`,
    metadata: new Metadata(),
  };
}
