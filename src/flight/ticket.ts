import { InvalidArgumentError } from '../errors.js';
import type { BatchRange } from '../storage/flight.js';

/**
 * Tickets are small JSON documents: `{"path":"a/b","v":"<version tag>"}`, optionally with
 * a batch range `{"path":"a/b","v":"…","from":0,"to":64}`. The version tag makes every
 * endpoint of one GetFlightInfo read the version it described, never a newer one. As a
 * convenience for hand-written clients, a ticket without `v` reads the current version,
 * and a ticket that is not a JSON document is read as a flight path (`Ticket(b"a/b")`).
 */
export interface TicketContent {
  path: string;
  /** The version tag the ticket was issued for. */
  version?: string;
  range?: BatchRange;
  /** Only these top-level columns, in this order (column projection). */
  columns?: string[];
}

export function encodeTicket(content: TicketContent): Buffer {
  const doc: Record<string, unknown> = { path: content.path };
  if (content.version !== undefined) doc.v = content.version;
  if (content.range) {
    doc.from = content.range.from;
    doc.to = content.range.to;
  }
  if (content.columns) doc.columns = content.columns;
  return Buffer.from(JSON.stringify(doc), 'utf8');
}

export function decodeTicket(raw: Buffer): TicketContent {
  if (raw.length === 0) throw new InvalidArgumentError('empty ticket');
  const text = raw.toString('utf8');
  if (text.startsWith('{')) {
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch {
      throw new InvalidArgumentError('ticket looks like JSON but does not parse');
    }
    if (typeof doc !== 'object' || doc === null || typeof (doc as { path?: unknown }).path !== 'string') {
      throw new InvalidArgumentError('ticket JSON needs a "path" string');
    }
    const { path, v, from, to, columns } = doc as {
      path: string;
      v?: unknown;
      from?: unknown;
      to?: unknown;
      columns?: unknown;
    };
    if (v !== undefined && typeof v !== 'string')
      throw new InvalidArgumentError(`ticket for "${path}": "v" must be a string`);
    const version = v === undefined ? {} : { version: v };
    const projection = columns === undefined ? {} : { columns: columnsOf(path, columns) };
    if (from === undefined && to === undefined) return { path, ...version, ...projection };
    if (!isIndex(from) || !isIndex(to) || from > to) {
      throw new InvalidArgumentError(`ticket for "${path}": "from" and "to" must be batch indices with from <= to`);
    }
    return { path, ...version, range: { from, to }, ...projection };
  }
  return { path: text };
}

/** A projection's `columns`: a non-empty list of column names. */
export function columnsOf(path: string, columns: unknown): string[] {
  if (!Array.isArray(columns) || columns.length === 0 || !columns.every((c) => typeof c === 'string')) {
    throw new InvalidArgumentError(`"${path}": "columns" must be a non-empty list of column names`);
  }
  return columns as string[];
}

function isIndex(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}
