/** One problem in a config file, located for the operator. */
export interface ConfigIssue {
  file: string;
  line: number;
  column: number;
  /** Dotted key path, e.g. `storageClasses[0].tiers[1].storage`. */
  key: string;
  message: string;
}

/** A step in a key path: an object key or an array index. */
export type PathKey = string | number;

/** A key path as operators read it: `storageClasses[0].tiers[1].storage`. */
export function formatKeyPath(keyPath: PathKey[]): string {
  return keyPath.reduce<string>(
    (acc, k) => (typeof k === 'number' ? `${acc}[${k}]` : acc === '' ? k : `${acc}.${k}`),
    '',
  );
}
