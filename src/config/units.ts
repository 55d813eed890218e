import bytesIec from 'bytes-iec';
import ms from 'ms';

/**
 * Sizes read as `512MiB`, `2GiB`, `64KiB` (IEC, base 1024) or `5GB` (base 1000), or a
 * plain number of bytes. Returns undefined for anything else so the caller can report it.
 */
export function parseSize(value: string | number): number | undefined {
  if (typeof value === 'number') {
    return Number.isSafeInteger(value) && value >= 0 ? value : undefined;
  }
  const trimmed = value.trim();
  if (!/^\d+(\.\d+)?\s*([KMGTPE]i?B|B)?$/i.test(trimmed)) return undefined;
  const parsed = bytesIec.parse(trimmed);
  return parsed !== null && Number.isFinite(parsed) && parsed >= 0 ? Math.floor(parsed) : undefined;
}

/** Durations read as `15m`, `7d`, `30s`, `250ms`; a plain number is milliseconds. */
export function parseDuration(value: string | number): number | undefined {
  if (typeof value === 'number') {
    return Number.isFinite(value) && value >= 0 ? value : undefined;
  }
  const trimmed = value.trim();
  if (!/^\d+(\.\d+)?\s*(ms|s|m|h|d|w)$/.test(trimmed)) return undefined;
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
