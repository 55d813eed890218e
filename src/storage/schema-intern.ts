import { LRUCache } from 'lru-cache';

/**
 * One copy of each distinct schema message: a million flights written by a few jobs share
 * a handful of schemas, and each would otherwise keep its own Buffer view (and with it the
 * whole message it arrived in). Content-addressed, so sharing it between storage managers
 * in one process is safe; bounded, so many distinct schemas cost a bounded cache.
 */
const schemas = new LRUCache<string, Buffer>({ max: 4096 });

/** The shared copy of a schema message's bytes (made on first sight). */
export function internSchema(header: Buffer): Buffer {
  const key = header.toString('base64');
  let shared = schemas.get(key);
  if (!shared) {
    shared = Buffer.from(header); // a compact copy: not a view into a larger received buffer
    schemas.set(key, shared);
  }
  return shared;
}
