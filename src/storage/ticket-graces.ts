import type { Clock } from '../core/clock.js';
import { Deadlines } from '../core/deadlines.js';
import { isUnderPrefix } from '../core/path.js';
import type { FlightVersion, Placed } from './flight.js';
import type { Ledger } from './ledger.js';

/**
 * Replaced versions whose tickets are still honoured (`server.ticketGrace`): their tier copy
 * stays charged, first in eviction order, until `placed.graceUntil`; by path, then tag, with
 * the ends in a deadline heap, so a sweep pops what is due and nothing else.
 */
export class TicketGraces {
  private readonly graced = new Map<string, Map<string, FlightVersion>>();
  private readonly ends = new Deadlines<FlightVersion>();

  constructor(
    private readonly ledger: Ledger,
    private readonly clock: Clock,
  ) {}

  /**
   * Until when a ticket issued now for `version` is honoured: `ticketGrace` from now, never
   * past the flight's expiry. Recorded, so a replace keeps the version for it.
   */
  issue(version: FlightVersion, ticketGrace: number): number {
    const now = this.clock.now();
    const until = Math.min(now + ticketGrace, version.expiresAt ?? Number.POSITIVE_INFINITY);
    version.ticketsUntil = Math.max(version.ticketsUntil, until);
    const placed = version.placed;
    // A graced version renewed (RenewFlightEndpoint): its copy stays as long.
    if (placed?.graceUntil !== undefined && !placed.retired) placed.graceUntil = Math.max(placed.graceUntil, until);
    return until;
  }

  /**
   * A replaced version whose tickets are not all expired stays readable through them: its
   * copy stays charged. Its durable object is the new version's now, so only a tier copy can
   * be kept. Whether it was kept.
   */
  keep(version: FlightVersion, placed: Placed): boolean {
    const until = version.ticketsUntil;
    if (until <= this.clock.now()) return false;
    let tags = this.graced.get(version.path);
    if (!tags) {
      tags = new Map();
      this.graced.set(version.path, tags);
    }
    tags.set(version.tag, version);
    this.ledger.grace(placed, until);
    this.ends.schedule(version, until);
    return true;
  }

  /** A replaced version still readable through its ticket, or undefined (its grace ended: it ends now). */
  find(path: string, tag: string): FlightVersion | undefined {
    const version = this.graced.get(path)?.get(tag);
    if (!version) return undefined;
    const placed = version.placed;
    if (placed && !placed.retired && this.clock.now() < (placed.graceUntil ?? 0)) return version;
    this.end(version);
    return undefined;
  }

  /** Ends the grace of a replaced version: its copy is freed (once no reader holds it). */
  end(version: FlightVersion): void {
    const tags = this.graced.get(version.path);
    if (tags?.get(version.tag) === version) {
      tags.delete(version.tag);
      if (tags.size === 0) this.graced.delete(version.path);
    }
    const placed = version.placed;
    if (placed && !placed.retired) this.ledger.retire(placed, 'replace');
  }

  /** Ends the graces of a path's replaced versions (it was deleted). */
  endPath(path: string): void {
    for (const version of [...(this.graced.get(path)?.values() ?? [])]) this.end(version);
  }

  /** Ends the graces of every path under a normalised prefix (delete-prefix). */
  endUnder(prefix: string): void {
    for (const path of [...this.graced.keys()]) if (isUnderPrefix(path, prefix)) this.endPath(path);
  }

  /** Ends the graces that ran out (a renewed one is scheduled again). */
  sweep(now: number): void {
    for (const version of this.ends.due(now)) {
      const placed = version.placed;
      if (!this.holds(version) || !placed || placed.retired) continue;
      const until = placed.graceUntil ?? 0;
      if (until <= now) this.end(version);
      else this.ends.schedule(version, until); // renewed meanwhile
    }
    this.ends.compact(this.count, (v) => this.holds(v));
  }

  /** Replaced versions kept for their tickets, now. */
  get count(): number {
    let n = 0;
    for (const tags of this.graced.values()) n += tags.size;
    return n;
  }

  private holds(version: FlightVersion): boolean {
    return this.graced.get(version.path)?.get(version.tag) === version;
  }
}
