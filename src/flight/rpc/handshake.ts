import { Metadata, type ServerDuplexStream } from '@grpc/grpc-js';
import type { Authenticator } from '../../auth/authenticator.js';
import type { Logger } from '../../core/log.js';
import { EMPTY } from '../call.js';
import { credentialsOf } from '../guard.js';
import type { PbHandshake } from '../proto.js';
import { toServiceError } from '../status.js';

/** Handshake (DESIGN §7): the authenticator checks the request headers and says what to send back. */
export function handshake(authenticator: Authenticator, log: Logger) {
  return (call: ServerDuplexStream<PbHandshake, PbHandshake>): void => {
    // The authenticator checks the credentials in the headers and says what to send back
    // (a token); each request is answered, as clients that always handshake expect.
    call.on('error', () => undefined);
    const answer = authenticator.handshake(credentialsOf(call)).then(({ responseHeaders }) => {
      const md = new Metadata();
      for (const [k, v] of Object.entries(responseHeaders)) md.set(k, v);
      call.sendMetadata(md);
    });
    answer.catch((err: unknown) => call.emit('error', toServiceError(err, log, 'Handshake')));
    call.on('data', (req: PbHandshake) => {
      answer.then(
        () => call.write({ protocol_version: req.protocol_version, payload: EMPTY }),
        () => undefined,
      );
    });
    call.on('end', () => {
      answer.then(
        () => call.end(),
        () => undefined,
      );
    });
  };
}
