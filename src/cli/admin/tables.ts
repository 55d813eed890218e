import { formatSize } from '../../config/units.js';

/** Plain-text tables for `tierflight admin` (a terminal's width, no colours). */
export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n');
}

interface Stats {
  storageTypes?: Record<
    string,
    { capacity: number; used: number; flights: number; reserved: number; ticketGrace?: number }
  >;
  classes?: Record<
    string,
    {
      prefix: string;
      flights: number;
      bytes: number;
      durableBytes?: number;
      durableOnly: number;
      durableOnlyBytes?: number;
      pinned?: number;
    }
  >;
  flights?: number;
  pinned?: number;
  putsInProgress?: number;
  reservations?: { store: string; live: number; waiters: number };
}

/** How byte counts read: human units (`1.5GiB`) for a person, exact for a script. */
export type BytesFormat = (bytes: number) => string;
export const exactBytes: BytesFormat = (bytes) => String(bytes);
export const humanBytes: BytesFormat = (bytes) => formatSize(bytes);

/**
 * `stats` as two readable tables and a summary line: per storage type its flights, used
 * bytes and capacity; per class its flights, bytes in tiers, bytes in the durable store,
 * the flights only there (and their bytes) and the pinned ones.
 */
export function statsTable(raw: Record<string, unknown>, size: BytesFormat = exactBytes): string {
  const stats = raw as Stats;
  const types = Object.entries(stats.storageTypes ?? {}).map(([name, t]) => [
    name,
    String(t.flights),
    size(t.used),
    size(t.capacity),
    `${t.capacity > 0 ? ((100 * t.used) / t.capacity).toFixed(1) : '0.0'}%`,
  ]);
  const classes = Object.entries(stats.classes ?? {}).map(([name, c]) => [
    name,
    c.prefix || '""',
    String(c.flights),
    size(c.bytes),
    size(c.durableBytes ?? 0),
    `${c.durableOnly} (${size(c.durableOnlyBytes ?? 0)})`,
    String(c.pinned ?? 0),
  ]);
  const r = stats.reservations;
  return [
    table(['storage', 'flights', 'used', 'capacity', 'full'], types),
    '',
    table(['class', 'prefix', 'flights', 'in tiers', 'durable', 'durable only', 'pinned'], classes),
    '',
    `${stats.flights ?? 0} flights (${stats.pinned ?? 0} pinned), ${stats.putsInProgress ?? 0} puts in progress` +
      (r ? `, ${r.live} reservations (${r.store}), ${r.waiters} waiting` : ''),
  ].join('\n');
}

interface ClusterReport {
  self?: string | null;
  members?: { name: string; location: string; state: string; flights?: number; bytes?: number; error?: string }[];
}

/** `cluster` as a table of members; a single node says so. */
export function clusterTable(raw: Record<string, unknown>, size: BytesFormat = exactBytes): string {
  const report = raw as ClusterReport;
  if (!report.self) return 'not a cluster: this server runs alone (no `cluster` in its config)';
  const rows = (report.members ?? []).map((m) => [
    m.name,
    m.state,
    m.location,
    m.flights === undefined ? '-' : String(m.flights),
    m.bytes === undefined ? '-' : size(m.bytes),
    m.error ?? '',
  ]);
  return table(['member', 'state', 'location', 'flights', 'bytes', ''], rows);
}
