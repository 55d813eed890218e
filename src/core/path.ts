import { InvalidArgumentError } from '../errors.js';

/**
 * Flight paths: descriptor segments joined with `/`, so `["a","b"]` and `["a/b"]` name the
 * same flight. A leading `/` is ignored (`["/data/x.json"]` is `data/x.json`: Arrow's
 * integration clients name flights by absolute file paths). Rejects what could escape a
 * class root or confuse a file system or S3: other empty segments, `.`/`..`, NUL and
 * control characters, and paths over 1024 bytes.
 */
export const MAX_PATH_BYTES = 1024;

declare const checked: unique symbol;

/**
 * A flight path checked and normalised once, where it comes in (a descriptor, a ticket, an
 * action's body, a durable object's key): the storage core takes only these, so it never
 * parses a path again.
 */
export type FlightPath = string & { readonly [checked]: true };

/**
 * A path read back from a store (an object's key, a manifest), which must already be in
 * normal form: as a FlightPath, or INVALID_ARGUMENT.
 */
export function storedPath(path: string): FlightPath {
  const result = normalizePath([path], true);
  if (!result.ok) throw new InvalidArgumentError(result.reason);
  if (result.value !== path) throw new InvalidArgumentError(`"${path}" is not a normalised flight path`);
  return result.value as FlightPath;
}

/**
 * Path segments starting with this are Tierflight's own (a dataset's partitions live under
 * `<dataset>/.tierflight-partition/…`): a client's path may not use them.
 */
export const RESERVED_SEGMENT = '.tierflight';
const PARTITION_SEGMENT = '.tierflight-partition';

/** A partition as its stored path names it. */
export interface PartitionName {
  dataset: FlightPath;
  generation: number;
  index: number;
  /** How many partitions its generation has. */
  count: number;
}

/**
 * Where partition `index` of `count` of generation `generation` of the dataset at `dataset`
 * is stored: `<dataset>/.tierflight-partition/<generation>/<index>-of-<count>`, so a restart
 * finds every dataset again from its stored partitions alone.
 */
export function partitionPath(dataset: FlightPath, generation: number, index: number, count: number): FlightPath {
  return `${dataset}/${PARTITION_SEGMENT}/${generation}/${index}-of-${count}` as FlightPath;
}

/** The prefix every partition of a dataset is stored under. */
export function partitionsPrefix(dataset: FlightPath): string {
  return `${dataset}/${PARTITION_SEGMENT}`;
}

/** The dataset, generation, index and count a partition's path names; undefined for any other path. */
export function partitionOf(path: string): PartitionName | undefined {
  const at = path.lastIndexOf(`/${PARTITION_SEGMENT}/`);
  if (at <= 0) return undefined;
  const m = /^(\d{1,15})\/(\d{1,9})-of-(\d{1,9})$/.exec(path.slice(at + PARTITION_SEGMENT.length + 2));
  if (!m) return undefined;
  const [generation, index, count] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (index >= count) return undefined;
  return { dataset: path.slice(0, at) as FlightPath, generation, index, count };
}

/**
 * The key a path is placed by in a cluster (rendezvous hashing): the path itself, but for a
 * partition its dataset and index (`<dataset>#<i>`), so partition i of every generation has
 * the same owners and a put of it can be routed before its generation is known.
 */
export function placementKey(path: string): string {
  const partition = partitionOf(path);
  return partition ? `${partition.dataset}#${partition.index}` : path;
}

/** A path a ticket names: a client's path, or a partition's (checked like a stored path). */
export function ticketPath(path: string): FlightPath {
  return partitionOf(path) ? storedPath(path) : flightPath(path);
}

/** Descriptor segments (or one path) as a FlightPath, or INVALID_ARGUMENT naming the problem. */
export function flightPath(parts: readonly string[] | string): FlightPath {
  const result = normalizePath(typeof parts === 'string' ? [parts] : parts);
  if (!result.ok) throw new InvalidArgumentError(result.reason);
  return result.value as FlightPath;
}

export type PathResult = { ok: true; value: string; segments: string[] } | { ok: false; reason: string };

// eslint-disable-next-line no-control-regex -- control characters are exactly what we refuse
const CONTROL = /[\u0000-\u001f\u007f]/;

/** `reserved`: Tierflight's own paths (partitions) are accepted too; a client's path never is. */
export function normalizePath(parts: readonly string[], reserved = false): PathResult {
  if (parts.length === 0) return { ok: false, reason: 'the descriptor path is empty' };
  const segments: string[] = [];
  for (const [i, part] of parts.entries()) {
    for (const segment of (i === 0 && part.startsWith('/') ? part.slice(1) : part).split('/')) {
      const problem =
        segmentProblem(segment) ??
        (!reserved && segment.startsWith(RESERVED_SEGMENT)
          ? `path segment "${segment}" is reserved (segments starting with "${RESERVED_SEGMENT}" are Tierflight's own)`
          : undefined);
      if (problem) return { ok: false, reason: `${problem} in path "${printable(parts.join('/'))}"` };
      segments.push(segment);
    }
  }
  const value = segments.join('/');
  if (Buffer.byteLength(value, 'utf8') > MAX_PATH_BYTES) {
    return { ok: false, reason: `path is longer than ${MAX_PATH_BYTES} bytes` };
  }
  return { ok: true, value, segments };
}

/** A class prefix: like a path, but may be empty (the root class). A trailing `/` is allowed. */
export function normalizePrefix(prefix: string): PathResult {
  const trimmed = prefix.endsWith('/') ? prefix.slice(0, -1) : prefix;
  if (trimmed === '') return { ok: true, value: '', segments: [] };
  return normalizePath([trimmed]);
}

/** NUL and control characters: refused in flight paths and in durable object keys alike. */
export function hasControlCharacter(s: string): boolean {
  return CONTROL.test(s);
}

function segmentProblem(segment: string): string | undefined {
  if (segment === '') return 'empty path segment';
  if (segment === '.' || segment === '..') return `path segment "${segment}" is not allowed`;
  if (hasControlCharacter(segment)) return 'control character';
  return undefined;
}

// eslint-disable-next-line no-control-regex -- show control characters in messages safely
const CONTROL_ALL = /[\u0000-\u001f\u007f]/g;

function printable(s: string): string {
  return s.replace(CONTROL_ALL, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`).slice(0, 200);
}

/** True when `path` equals `prefix` or lies below it on a whole-segment boundary. */
export function isUnderPrefix(path: string, prefix: string): boolean {
  if (prefix === '') return true;
  return path === prefix || (path.startsWith(prefix) && path.charCodeAt(prefix.length) === 47); /* '/' */
}
