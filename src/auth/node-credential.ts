import { systemClock, type Clock } from '../core/clock.js';
import { Timers } from '../core/timers.js';
import type { AuthConfig } from '../config/schema.js';
import { TokenSigner } from './tokens.js';

/** Token subjects of cluster nodes: `node:<member name>` (user names cannot contain a colon). */
export const NODE_PREFIX = 'node:';

/**
 * Set by a node calling another on a user's behalf (a forwarded put, a fanned-out delete):
 * the receiving node gives the call that user's rights. Honoured only on calls that carry a
 * node credential.
 */
export const ON_BEHALF_HEADER = 'x-tierflight-user';

/**
 * Set on every call one node makes to another (its member name): the receiver answers from
 * its own state and neither forwards nor fans out again.
 */
export const FROM_NODE_HEADER = 'x-tierflight-from-node';

/**
 * On a put one node makes to copy a flight to another (a replica, a handover): the copied
 * version's identity as JSON (`VersionIdentity`), so the copy keeps its version tag and
 * times, and the tickets the primary hands out read it on every owner.
 */
export const VERSION_HEADER = 'x-tierflight-version';

/**
 * The headers nodes send each other. With authentication on, only a call made with a node
 * credential may carry any of them; from anyone else the call is refused (PERMISSION_DENIED).
 */
export const NODE_ONLY_HEADERS = [FROM_NODE_HEADER, ON_BEHALF_HEADER, VERSION_HEADER] as const;

/**
 * A cluster node's credential for calls to the other nodes (DESIGN §8): a bearer token for
 * `node:<self>` signed with the shared `auth.tokenSecret`, so any node sharing the secret
 * accepts it, minted again at half its lifetime. Carries every right: whoever has the secret
 * could sign one anyway.
 */
export class NodeCredential {
  private readonly signer: TokenSigner;
  private token = '';
  private readonly timers: Timers;
  private readonly ttlMs: number;

  constructor(
    auth: AuthConfig,
    private readonly self: string,
    // Tokens expire on the wall clock (their `exp`), so they are renewed on it too by default.
    clock: Clock = systemClock,
  ) {
    this.timers = new Timers(clock);
    this.signer = new TokenSigner(auth.tokenSecret, auth.tokenTtl, auth.sessionMax);
    this.ttlMs = auth.tokenTtl;
  }

  async start(): Promise<void> {
    await this.renew();
    this.timers.every(Math.max(1_000, this.ttlMs / 2), () => this.renew());
  }

  stop(): void {
    this.timers.stop();
  }

  /** The headers of a node-to-node call: this node's token, and the user it calls for if any. */
  headers(onBehalfOf?: string): Record<string, string> {
    return {
      authorization: `Bearer ${this.token}`,
      ...(onBehalfOf !== undefined ? { [ON_BEHALF_HEADER]: onBehalfOf } : {}),
    };
  }

  private async renew(): Promise<void> {
    this.token = await this.signer.sign({ user: `${NODE_PREFIX}${this.self}`, generation: undefined });
  }
}
