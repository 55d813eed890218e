import { Resolver } from 'node:dns/promises';
import type { ClusterConfig } from '../config/schema.js';
import type { Clock } from '../core/clock.js';
import { Timers } from '../core/timers.js';
import type { Logger } from '../core/log.js';

/** `unknown` until the first probe answers or three fail; counted as live until then, so every node places alike from the start. */
export type MemberState = 'self' | 'unknown' | 'up' | 'down';

export interface Member {
  name: string;
  location: string;
  state: MemberState;
}

/** Three probes missed in a row mark a member down (DESIGN §8). */
export const MISSES_TO_DOWN = 3;

/** Asks a member whether it answers; rejects when it does not (within `timeoutMs`). */
export type Probe = (member: Member, timeoutMs: number) => Promise<void>;

/** Looks a DNS name up; the addresses it has now. */
export type Lookup = (name: string) => Promise<string[]>;

/**
 * The members of a cluster and whether each answers (DESIGN §8): from `cluster.members`, or
 * every address of `cluster.discover.dns` looked up again every `every` (a Kubernetes
 * headless service). Each other member is probed every `probeEvery`; three misses in a
 * row mark it down, and one answer marks it up again. No consensus: each node keeps its
 * own view, and placement is by rendezvous hashing over the live ones.
 */
export class Membership {
  private readonly members = new Map<string, Member & { misses: number }>();
  private readonly listeners = new Set<() => void>();
  private readonly returned = new Set<(member: Member) => void>();
  private readonly downs = new Set<(member: Member) => void>();
  private readonly ups = new Set<(member: Member) => void>();
  private readonly timers: Timers;
  private stopped = false;

  constructor(
    private readonly config: ClusterConfig,
    /** How this node's own members are reached: with discovery, `grpc+tcp://address:port` (tls: `grpc+tls`). */
    private readonly scheme: 'grpc+tcp' | 'grpc+tls',
    private readonly probe: Probe,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly lookup: Lookup = systemLookup(config.discover?.resolver),
  ) {
    for (const m of config.members ?? []) this.add(m.name, m.location);
    this.timers = new Timers(clock, (err) =>
      log.error({ err: (err as Error).message }, 'cluster membership check failed'),
    );
  }

  get self(): string {
    return this.config.self;
  }

  /**
   * Starts probing (and, with discovery, looking up); resolves after the first lookup and
   * the first round of probes, so a node starts serving with the states it found.
   */
  async start(): Promise<void> {
    if (this.config.discover) {
      await this.discover();
      this.every(this.config.discover.every, () => this.discover());
    }
    this.every(this.config.probeEvery, () => this.probeAll());
    await this.probeAll();
  }

  stop(): void {
    this.stopped = true;
    this.timers.stop();
  }

  /** Every member, self included, sorted by name. */
  all(): Member[] {
    return [...this.members.values()]
      .map(({ name, location, state }) => ({ name, location, state }))
      .sort((a, b) => (a.name < b.name ? -1 : 1));
  }

  /** The members placement counts: all but those that are down. */
  live(): Member[] {
    return this.all().filter((m) => m.state !== 'down');
  }

  get(name: string): Member | undefined {
    const m = this.members.get(name);
    return m && { name: m.name, location: m.location, state: m.state };
  }

  /** Called whenever a member joins, leaves, goes down or comes back. */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private add(name: string, location: string): void {
    const state: MemberState = name === this.config.self ? 'self' : 'unknown';
    this.members.set(name, { name, location, state, misses: 0 });
  }

  private every(ms: number, fn: () => Promise<void>): void {
    this.timers.every(ms, fn);
  }

  private async probeAll(): Promise<void> {
    const timeout = Math.max(200, Math.min(this.config.probeEvery, 5_000));
    await Promise.all(
      [...this.members.values()]
        .filter((m) => m.state !== 'self')
        .map(async (m) => {
          const answered = await this.probe(m, timeout).then(
            () => true,
            () => false,
          );
          if (this.stopped || this.members.get(m.name) !== m) return;
          if (answered) {
            m.misses = 0;
            if (m.state !== 'up') this.set(m, 'up');
          } else if (++m.misses >= MISSES_TO_DOWN && m.state !== 'down') {
            this.set(m, 'down');
          }
        }),
    );
  }

  private set(m: Member & { misses: number }, state: MemberState): void {
    const was = m.state;
    m.state = state;
    const log = state === 'down' ? this.log.warn.bind(this.log) : this.log.info.bind(this.log);
    log({ member: m.name, location: m.location, was, now: state, at: this.clock.now() }, `cluster member ${state}`);
    if (was === 'down' && state === 'up')
      for (const l of this.returned) l({ name: m.name, location: m.location, state });
    if (state === 'down') for (const l of this.downs) l({ name: m.name, location: m.location, state });
    if (state === 'up' && was !== 'up') for (const l of this.ups) l({ name: m.name, location: m.location, state });
    this.changed();
  }

  /** Called when a member is seen up: first answered after this node started, or back from being down. */
  onUp(listener: (member: Member) => void): () => void {
    this.ups.add(listener);
    return () => this.ups.delete(listener);
  }

  /** Called when a member is marked down (three probes missed). */
  onDown(listener: (member: Member) => void): () => void {
    this.downs.add(listener);
    return () => this.downs.delete(listener);
  }

  /** Called when a member that was down answers again (it may not know it was away: paused, cut off). */
  onReturn(listener: (member: Member) => void): () => void {
    this.returned.add(listener);
    return () => this.returned.delete(listener);
  }

  private async discover(): Promise<void> {
    const discover = this.config.discover;
    if (!discover) return;
    let addresses: string[];
    try {
      addresses = await this.lookup(discover.dns);
    } catch (err) {
      // Keep the members we know: a DNS hiccup must not empty the cluster.
      this.log.warn({ dns: discover.dns, err: (err as Error).message }, 'cluster discovery lookup failed');
      return;
    }
    const found = new Map<string, string>(
      addresses.map((a) => {
        const host = a.includes(':') ? `[${a}]` : a;
        return [`${host}:${discover.port}`, `${this.scheme}://${host}:${discover.port}`] as const;
      }),
    );
    // This node is a member even before DNS lists it (a pod not yet ready).
    if (!found.has(this.config.self)) found.set(this.config.self, `${this.scheme}://${this.config.self}`);
    let changed = false;
    for (const [name, location] of found) {
      if (!this.members.has(name)) {
        this.add(name, location);
        this.log.info({ member: name, location }, 'cluster member discovered');
        changed = true;
      }
    }
    for (const name of [...this.members.keys()]) {
      if (!found.has(name)) {
        this.members.delete(name);
        this.log.info({ member: name }, 'cluster member left (no longer in DNS)');
        changed = true;
      }
    }
    if (changed) this.changed();
  }

  private changed(): void {
    for (const l of this.listeners) l();
  }
}

/** IPv4 and IPv6 addresses of a name, from the system's resolvers or the one given (`host:port`). */
function systemLookup(server: string | undefined): Lookup {
  const resolver = new Resolver({ timeout: 2_000, tries: 2 });
  if (server !== undefined) resolver.setServers([server]);
  return async (name) => {
    const [v4, v6] = await Promise.all([
      resolver.resolve4(name).catch(() => [] as string[]),
      resolver.resolve6(name).catch(() => [] as string[]),
    ]);
    if (v4.length === 0 && v6.length === 0) throw new Error(`${name} has no address`);
    return [...v4, ...v6];
  };
}
