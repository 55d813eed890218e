import type { Clock } from '../core/clock.js';
import type { FlightPath } from '../core/path.js';
import type { Logger } from '../core/log.js';
import type { Durability } from '../durability/durability.js';
import { relativeSegments, type RoutedClass } from '../routing/router.js';
import type { Catalog } from './catalog.js';
import type { PlacementEvents } from './events.js';
import type { Landing } from './landing.js';
import type { DurableCopy, FlightVersion, VersionIdentity } from './flight.js';
import type { Ledger } from './ledger.js';
import { PutSession, type PutHost } from './put-session.js';
import type { Placement } from './storage-type.js';
import { TierCopy } from './tier-copy.js';
import { overMax } from './spill-leeway.js';
import type { TierMover } from './tier-mover.js';

/** What starting and finishing puts is built on. */
export interface PutsParts {
  ledger: Ledger;
  /** Where puts are admitted by the limits and published. */
  catalog: Catalog;
  /** Charges (and evicts for) a put's bytes. */
  mover: TierMover;
  /** Strong puts' store uploads, weak puts' queued ones. */
  durability: Durability;
  events: PlacementEvents;
  /** Told, and awaited, when a put lands (reservations). */
  landing: Landing;
  clock: Clock;
  log: Logger;
}

/**
 * The puts in progress: each a PutSession writing through a TierCopy (charging and evicting
 * through the tier mover, admitted by the limits) and, when it commits, published in the
 * catalog, with its durable copy confirmed (strong) or queued (weak).
 */
export class Puts {
  private readonly sessions = new Set<PutSession>();
  private readonly host: PutHost;

  constructor(private readonly d: PutsParts) {
    this.host = this.putHost();
  }

  get inProgress(): number {
    return this.sessions.size;
  }

  async begin(
    path: FlightPath,
    cls: RoutedClass,
    options: { sizeHint?: number; owner?: string; identity?: VersionIdentity },
  ): Promise<PutSession> {
    const session = await PutSession.begin(this.host, path, cls, options.sizeHint);
    session.owner = options.identity?.owner ?? options.owner;
    session.identity = options.identity;
    this.sessions.add(session);
    return session;
  }

  /** What put sessions call back into. */
  private putHost(): PutHost {
    return {
      log: this.d.log,
      emit: (event) => this.d.events.emit(event),
      storageType: (tier) => this.d.ledger.storageType(tier),
      // Charging a put's bytes evicts lower-priority, then least-recently-used copies.
      copyInto: (tier, path) =>
        new TierCopy(this.d.ledger, tier, (charge, bytes) => this.d.mover.chargeBytes(charge, bytes, path)),
      strongSink: (cls, path, evenIfWeak) => this.d.durability.strongSink(cls.config, path, evenIfWeak),
      publish: (version, placement, tierIndex, durable) => this.publish(version, placement, tierIndex, durable),
      landed: (version, copied) => this.d.landing.landed(version, copied),
      admit: (session, bytes) => {
        // Called for every message of every put: nothing to do without limit policies.
        if (!this.d.catalog.limits.active) return;
        const segments = relativeSegments(session.cls, session.path);
        const current = this.d.catalog.get(session.path);
        this.d.catalog.limits.admit(session, session.cls.config.name, session.path, segments, bytes, current);
      },
      now: () => this.d.clock.now(),
      current: (path) => {
        const version = this.d.catalog.get(path);
        return version && !version.isExpired(this.d.clock.now()) ? version : undefined;
      },
      sessionEnded: (session) => {
        this.sessions.delete(session);
        this.d.catalog.limits.settle(session);
      },
    };
  }

  private publish(
    version: FlightVersion,
    placement: Placement | undefined,
    tierIndex: number,
    durable?: DurableCopy,
  ): void {
    const placed = placement && this.d.ledger.place(version, placement, tierIndex);
    version.placed = placed;
    // A strong put arrives with its durable copy confirmed; a weak one queues its upload below.
    version.durable = durable ?? this.d.durability.copyFor(version.cls.config, version.path);
    this.d.catalog.publish(version);
    const storage = placed?.storage ?? 'durable';
    this.d.events.emit({ type: 'put', version, storage, tier: tierIndex });
    this.d.log.debug(
      { path: version.path, storage, tier: tierIndex, bytes: placed?.bytes ?? durable?.object?.size, reason: 'put' },
      placed ? 'flight stored' : 'flight stored in the durable store only: it fits no tier',
    );
    // A put that ended within its tier's spill leeway moves down now, before its weak upload reads it.
    if (placed && overMax(version.cls.config.tiers, tierIndex, placed.bytes)) this.d.mover.moveDue();
    if (version.durable?.state === 'pending') {
      void this.d.durability.upload(version).then(() => this.d.catalog.durableChanged(version));
    }
    const object = version.durable?.object;
    if (object && durable) {
      const seconds = durable.seconds ?? 0;
      this.d.events.emit({ type: 'durable-write', version, durability: 'strong', bytes: object.size, seconds });
    }
  }
}
