import type { ServerWritableStream } from '@grpc/grpc-js';
import type { Logger } from '../../core/log.js';
import { builtinActions, type ActionVerb } from '../actions/index.js';
import { acrossCluster, forwardedHeaders, type ClusterMember, type ClusterPort } from '../cluster-port.js';
import { streamOut, type RpcContext } from '../call.js';
import { identityOf } from '../guard.js';
import type { PbAction } from '../proto.js';

/**
 * With reservations in each node's memory (a `--workers` local cluster), the primary owner
 * of a reservation verb's path when that is another node: reservations live where the
 * path's puts land and its waits are answered. Undefined: run here.
 */
function memoryReservationsOwner(
  ctx: RpcContext,
  cluster: ClusterPort,
  verb: ActionVerb,
  body: Buffer,
): ClusterMember | undefined {
  if (!verb.atOwner || !verb.target || ctx.reservations.store.type !== 'memory') return undefined;
  const { path, cls } = ctx.manager.route([verb.target(body)]);
  const owner = cluster.owners(path, cls.config.replicas)[0];
  return owner && !owner.self ? owner : undefined;
}

/**
 * Runs a cluster-wide verb here and on every other live member, and joins their results
 * (DESIGN §8: delete, delete-prefix and pin act cluster-wide). It fails only when every
 * member failed, with this node's error; a member that cannot be reached is logged.
 */
async function onEveryMember(
  cluster: ClusterPort,
  verb: ActionVerb,
  call: ServerWritableStream<PbAction, { body: Buffer }>,
  run: () => AsyncIterable<Buffer>,
  log: Logger,
): Promise<Buffer> {
  const headers = forwardedHeaders(cluster, call);
  const local = (async () => {
    const out: Buffer[] = [];
    for await (const body of run()) out.push(body);
    return out;
  })();
  const remote = cluster.peers().map((peer) =>
    cluster.action(peer, verb.type, call.request.body, headers).catch((err: unknown) => {
      log.warn(
        { member: peer.name, action: verb.type, err: (err as Error).message },
        'a member did not run the action',
      );
      throw err;
    }),
  );
  const settled = await Promise.allSettled([local, ...remote]);
  const results = settled
    .filter((s): s is PromiseFulfilledResult<Buffer[]> => s.status === 'fulfilled')
    .flatMap((s) => s.value.slice(0, 1).map((b) => JSON.parse(b.toString()) as unknown));
  if (results.length === 0) throw (settled[0] as PromiseRejectedResult).reason;
  return Buffer.from(JSON.stringify(verb.clusterWide?.(results)));
}

/** DoAction and ListActions over the registry of verbs (`flight/actions/`). */
export function actionHandlers(ctx: RpcContext) {
  const { manager, reservations, jobs, log } = ctx;
  const actions = builtinActions();
  return {
    DoAction: (call: ServerWritableStream<PbAction, { body: Buffer }>): void => {
      void streamOut(ctx, call, 'DoAction', async (write) => {
        const identity = identityOf(call);
        const cluster = acrossCluster(ctx.cluster, call.metadata);
        const context = {
          ...(ctx.cluster ? { cluster: ctx.cluster } : {}),
          ...(cluster ? { forwarded: forwardedHeaders(cluster, call) } : {}),
          manager,
          reservations,
          jobs,
          log,
          peer: call.getPeer(),
          user: identity.user,
          identity,
          ...(ctx.denied ? { denied: ctx.denied } : {}),
        };
        const verb = actions.get(call.request.type);
        const owner = verb && cluster ? memoryReservationsOwner(ctx, cluster, verb, call.request.body) : undefined;
        if (owner && cluster) {
          const headers = forwardedHeaders(cluster, call);
          for (const body of await cluster.action(owner, call.request.type, call.request.body, headers))
            await write({ body });
          return;
        }
        const run = () => actions.run(call.request.type, call.request.body, context);
        if (!verb?.clusterWide || !cluster) {
          for await (const body of run()) await write({ body });
          return;
        }
        await write({ body: await onEveryMember(cluster, verb, call, run, ctx.log) });
      });
    },

    ListActions: (call: ServerWritableStream<unknown, { type: string; description: string }>): void => {
      void streamOut(ctx, call, 'ListActions', async (write) => {
        for (const { type, description } of actions.list()) await write({ type, description });
      });
    },
  };
}
