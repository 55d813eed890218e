import type { RpcContext } from '../call.js';
import type { ClusterPort } from '../cluster-port.js';
import type { FlightVersion } from '../../storage/flight.js';

/**
 * After a put lands on the path's primary owner: the other owners (`replicas` of the class,
 * DESIGN §8) get a copy of a non-durable flight, streamed from the stored one in the
 * background (the client has its answer already); a durable one they restore from the store
 * on first read instead. A replica that cannot take it is logged (and counted with the
 * cluster calls), and the flight stays on the primary.
 */
export function replicate(ctx: RpcContext, cluster: ClusterPort, version: FlightVersion): void {
  const { path, tag } = version;
  const { replicas, durability } = version.cls.config;
  if (replicas <= 1 || durability !== 'none') return;
  const owners = cluster.owners(path, replicas);
  if (!owners[0]?.self) return;
  for (const to of owners.slice(1)) {
    cluster.copyFlight(to, path, tag).then(
      () => ctx.log.debug({ path, replica: to.name }, 'replica copied'),
      (err: unknown) =>
        ctx.log.warn({ path, replica: to.name, err: (err as Error).message }, 'could not copy a flight to a replica'),
    );
  }
}
