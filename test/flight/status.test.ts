import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/core/log.js';
import { DurableStoreError } from '../../src/durable/durable-store.js';
import {
  CancelledError,
  InvalidArgumentError,
  NotFoundError,
  PermissionDeniedError,
  ResourceExhaustedError,
  UnauthenticatedError,
  UnavailableError,
  UnimplementedError,
} from '../../src/errors.js';
import { toServiceError } from '../../src/flight/status.js';

/** The one error → gRPC status mapper: nothing but a bug reaches a client as INTERNAL. */
describe('errors at the edge', () => {
  it.each([
    [new NotFoundError('x'), status.NOT_FOUND],
    [new InvalidArgumentError('x'), status.INVALID_ARGUMENT],
    [new ResourceExhaustedError('x'), status.RESOURCE_EXHAUSTED],
    [new UnavailableError('x'), status.UNAVAILABLE],
    [new UnauthenticatedError('x'), status.UNAUTHENTICATED],
    [new PermissionDeniedError('x'), status.PERMISSION_DENIED],
    [new CancelledError('x'), status.CANCELLED],
    [new UnimplementedError('x'), status.UNIMPLEMENTED],
    [new DurableStoreError('transient', 's3', 'k', 'connection refused'), status.UNAVAILABLE],
    [new DurableStoreError('permanent', 's3', 'k', 'access denied'), status.UNAVAILABLE],
    [new DurableStoreError('not_found', 's3', 'k', 'no such key'), status.NOT_FOUND],
    [Object.assign(new Error('ENOENT: no such file'), { code: 'ENOENT' }), status.UNAVAILABLE],
    [Object.assign(new Error('unexpected end of file'), { code: 'EIO' }), status.UNAVAILABLE],
  ])('maps %s to status %i', (err, code) => {
    const e = toServiceError(err, silentLogger, 'DoGet');
    expect(e.code).toBe(code);
    expect(e.details).toContain(err.message);
  });

  it('reports anything else as INTERNAL: a bug, logged in full', () => {
    const e = toServiceError(new TypeError('x is undefined'), silentLogger, 'DoGet');
    expect(e).toMatchObject({ code: status.INTERNAL, details: 'internal error in DoGet: x is undefined' });
  });
});
