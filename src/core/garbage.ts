/**
 * When V8 collects the buffers a server stops using (DESIGN: the data path, issue 27).
 *
 * V8 decides when to run a full GC from how its heap grows and, by default, from every
 * 64 MiB of ArrayBuffer memory allocated since the last one. A cache keeps most of what it
 * receives, so those GCs find little to free, and each marks the whole heap: a 512 MiB
 * DoPut started eight, a third of the server's CPU. Tierflight's entry points start Node
 * with `--external-memory-accounted-in-global-limit` (buffer memory then counts in V8's
 * global limit, which grows with what is live, so it stops collecting every 64 MiB) and
 * `--expose-gc`, and this watch asks for a collection when it knows there is garbage:
 * every CHECK_EVERY bytes received it compares the ArrayBuffer memory V8 still holds with
 * what the storage keeps live (the memory tier's bytes); past `threshold` of difference it
 * starts an asynchronous major GC (concurrent marking, as V8's own). So garbage stays
 * bounded — replaced and evicted flights, buffers written on to a disk tier or another
 * node — while kept flights cost no GC at all. Without `gc` (the process was started
 * without the flags, as in tests) it does nothing and V8 decides alone.
 */
const CHECK_EVERY = 64 * 1024 * 1024;
/** Garbage (MiB of buffers no longer used) tolerated before a collection is asked for. */
export const GARBAGE_THRESHOLD = 128 * 1024 * 1024;

type Gc = (options?: { type?: 'major' | 'minor'; execution?: 'sync' | 'async' }) => void | Promise<void>;

const providers = new Set<() => number>();
let sinceCheck = 0;
let requested = 0;

/** Registers what the storage keeps live (bytes of buffers); returns the unregistration. */
export function keepsLive(bytes: () => number): () => void {
  providers.add(bytes);
  return () => providers.delete(bytes);
}

/** Counts buffer bytes just received; checks for garbage every CHECK_EVERY of them. */
export function received(bytes: number): void {
  sinceCheck += bytes;
  if (sinceCheck < CHECK_EVERY) return;
  sinceCheck = 0;
  collectIfGarbage();
}

/** Asks for a major GC when the buffers V8 holds exceed what is live by more than the threshold. */
export function collectIfGarbage(): boolean {
  const gc = (globalThis as { gc?: Gc }).gc;
  if (typeof gc !== 'function') return false;
  let live = 0;
  for (const p of providers) live += p();
  if (process.memoryUsage().arrayBuffers - live <= GARBAGE_THRESHOLD) return false;
  requested++;
  void Promise.resolve(gc({ type: 'major', execution: 'async' })).catch(() => undefined);
  return true;
}

/** How many collections were asked for (a metric and the tests read it). */
export function collectionsRequested(): number {
  return requested;
}
