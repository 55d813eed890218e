import type { ServerWritableStream } from '@grpc/grpc-js';
import { builtinActions } from '../actions/index.js';
import { forwardedHeaders, fromNode } from '../cluster-port.js';
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
        const { cluster } = ctx.owners;
        const context = {
          cluster,
          // Calls to other members on this call's behalf: for a client's call only.
          ...(fromNode(call) ? {} : { forwarded: forwardedHeaders(cluster, call) }),
          manager,
          reservations,
          datasets: ctx.datasets,
          homes: ctx.homes,
          jobs,
          log,
          peer: call.getPeer(),
          user: identity.user,
          identity,
          ...(ctx.denied ? { denied: ctx.denied } : {}),
        };
        const verb = actions.get(call.request.type);
        const run = () => actions.run(call.request.type, call.request.body, context);
        // Run here, on the path's owner, or on every member (`Owners.action`).
        const memoryReservations = reservations.store.type === 'memory';
        for await (const body of ctx.owners.action(call, verb, memoryReservations, run)) await write({ body });
      });
    },

    ListActions: (call: ServerWritableStream<unknown, { type: string; description: string }>): void => {
      void streamOut(ctx, call, 'ListActions', async (write) => {
        for (const { type, description } of actions.list()) await write({ type, description });
      });
    },
  };
}
