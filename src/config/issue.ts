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
