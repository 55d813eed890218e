import type { Logger } from '../core/log.js';
import { DurableStoreError } from '../durable/durable-store.js';
import { readFlightObject, type FlightObject } from '../durability/flight-object.js';
import type { FlightVersion } from './flight.js';

/**
 * Reads the manifests of unread versions (known only by their listed object, see
 * FlightVersion.unread): what every caller that needs a version's schema, totals, tag or
 * expiry awaits first. One read per version, shared by concurrent callers; what it finds is
 * handed to `filled` (the catalog), undefined when the object is gone or is not a flight.
 */
export class ManifestReads {
  constructor(
    private readonly log: Logger,
    /** The visible version of a normalised path. */
    private readonly visible: (path: string) => FlightVersion | undefined,
    private readonly filled: (version: FlightVersion, object: FlightObject | undefined) => void,
  ) {}

  /** Reads an unread version's manifest (a no-op for other versions). */
  read(version: FlightVersion): Promise<void> {
    if (!version.unread) return Promise.resolve();
    return (version.loading ??= this.readNow(version).finally(() => (version.loading = undefined)));
  }

  /** `read` for the version at a normalised path, if any. */
  async readPath(path: string): Promise<void> {
    const version = this.visible(path);
    if (version?.unread) await this.read(version);
  }

  /** Reads the manifests of the unread versions among `versions`, `atOnce` at a time. */
  async readAll(versions: readonly FlightVersion[], atOnce: number): Promise<void> {
    const unread = versions.filter((v) => v.unread);
    let next = 0;
    const reader = async (): Promise<void> => {
      while (next < unread.length) await this.read(unread[next++] as FlightVersion);
    };
    await Promise.all(Array.from({ length: Math.min(atOnce, unread.length) }, reader));
  }

  private async readNow(version: FlightVersion): Promise<void> {
    const copy = version.durable;
    if (!copy) return;
    let object: FlightObject | undefined;
    try {
      object = await readFlightObject(copy.store, copy.key, copy.listed);
    } catch (err) {
      if (!(err instanceof DurableStoreError) || err.kind === 'transient') throw err;
      this.log.warn({ path: version.path, key: copy.key, err: err.message }, 'a listed object is not a flight');
    }
    if (!version.unread || version.retired) return; // read, replaced or deleted meanwhile
    if (!object) this.log.warn({ path: version.path, key: copy.key }, 'a listed flight object is gone');
    this.filled(version, object);
  }
}
