import type { ServerWritableStream } from '@grpc/grpc-js';
import { builtinActions } from '../actions/index.js';
import { streamOut, type RpcContext } from '../call.js';
import { identityOf } from '../guard.js';
import type { PbAction } from '../proto.js';

/** DoAction and ListActions over the registry of verbs (`flight/actions/`). */
export function actionHandlers(ctx: RpcContext) {
  const { manager, reservations, jobs, log } = ctx;
  const actions = builtinActions();
  return {
    DoAction: (call: ServerWritableStream<PbAction, { body: Buffer }>): void => {
      void streamOut(ctx, call, 'DoAction', async (write) => {
        const identity = identityOf(call);
        const context = {
          manager,
          reservations,
          jobs,
          log,
          peer: call.getPeer(),
          user: identity.user,
          identity,
          ...(ctx.denied ? { denied: ctx.denied } : {}),
        };
        for await (const body of actions.run(call.request.type, call.request.body, context)) await write({ body });
      });
    },

    ListActions: (call: ServerWritableStream<unknown, { type: string; description: string }>): void => {
      void streamOut(ctx, call, 'ListActions', async (write) => {
        for (const { type, description } of actions.list()) await write({ type, description });
      });
    },
  };
}
