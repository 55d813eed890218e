import bytesIec from 'bytes-iec';
import ms from 'ms';

/** What a size looks like (also the JSON Schema's `pattern`, which has no flags). */
export const SIZE_PATTERN = '^\\d+(\\.\\d+)?\\s*([KkMmGgTtPpEe][Ii]?[Bb]|[Bb])?$';
/** What a duration looks like (also the JSON Schema's `pattern`). */
export const DURATION_PATTERN = '^\\d+(\\.\\d+)?\\s*(ms|s|m|h|d|w)$';

/**
 * Sizes read as `512MiB`, `2GiB`, `64KiB` (IEC, base 1024) or `5GB` (base 1000), or a
 * plain number of bytes. Returns undefined for anything else so the caller can report it.
 */
export function parseSize(value: string | number): number | undefined {
  if (typeof value === 'number') {
    return Number.isSafeInteger(value) && value >= 0 ? value : undefined;
  }
  const trimmed = value.trim();
  if (!new RegExp(SIZE_PATTERN).test(trimmed)) return undefined;
  const parsed = bytesIec.parse(trimmed);
  return parsed !== null && Number.isFinite(parsed) && parsed >= 0 ? Math.floor(parsed) : undefined;
}

/** Durations read as `15m`, `7d`, `30s`, `250ms`; a plain number is milliseconds. */
export function parseDuration(value: string | number): number | undefined {
  if (typeof value === 'number') {
    return Number.isFinite(value) && value >= 0 ? value : undefined;
  }
  const trimmed = value.trim();
  if (!new RegExp(DURATION_PATTERN).test(trimmed)) return undefined;
  const parsed = ms(trimmed as ms.StringValue);
  return typeof parsed === 'number' && Number.isFinite(parsed) && parsed >= 0 ? parsed : undefined;
}

/** `1073741824` → `1GiB`, for messages and the `route` command. */
export function formatSize(bytes: number): string {
  return bytesIec.format(bytes, { mode: 'binary', unitSeparator: '' }) ?? `${bytes}B`;
}

/** `604800000` → `7d`, for messages and the `route` command. */
export function formatDuration(msValue: number): string {
  return ms(msValue);
}

const SIZE_UNITS: [string, number][] = [
  ['PiB', 2 ** 50],
  ['TiB', 2 ** 40],
  ['GiB', 2 ** 30],
  ['MiB', 2 ** 20],
  ['KiB', 2 ** 10],
];
const DURATION_UNITS: [string, number][] = [
  ['d', 86_400_000],
  ['h', 3_600_000],
  ['m', 60_000],
  ['s', 1000],
];

/** A size exactly, in the largest unit that divides it (`1500KiB`, not `1.46MiB`). */
export function formatExactSize(bytes: number): string {
  for (const [unit, n] of SIZE_UNITS) if (bytes >= n && bytes % n === 0) return `${bytes / n}${unit}`;
  return `${bytes}B`;
}

/** A duration exactly, in the largest unit that divides it (`36h`, not `2d`). */
export function formatExactDuration(msValue: number): string {
  for (const [unit, n] of DURATION_UNITS) if (msValue >= n && msValue % n === 0) return `${msValue / n}${unit}`;
  return `${msValue}ms`;
}
