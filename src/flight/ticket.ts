import { InvalidArgumentError } from '../errors.js';
import type { BatchRange } from '../storage/flight.js';

/**
 * Tickets are small JSON documents: `{"path":"a/b"}`, optionally with a batch range
 * `{"path":"a/b","from":0,"to":64}`. As a convenience for hand-written clients, a ticket
 * that is not such a document is read as a flight path (`Ticket(b"a/b")`).
 */
export interface TicketContent {
  path: string;
  range?: BatchRange;
}

export function encodeTicket(content: TicketContent): Buffer {
  const doc: Record<string, unknown> = { path: content.path };
  if (content.range) {
    doc.from = content.range.from;
    doc.to = content.range.to;
  }
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
    const { path, from, to } = doc as { path: string; from?: unknown; to?: unknown };
    if (from === undefined && to === undefined) return { path };
    if (!isIndex(from) || !isIndex(to) || from > to) {
      throw new InvalidArgumentError(`ticket for "${path}": "from" and "to" must be batch indices with from <= to`);
    }
    return { path, range: { from, to } };
  }
  return { path: text };
}

function isIndex(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}
