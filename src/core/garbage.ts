/**
 * When V8 collects the buffers a server stops using (DESIGN: the data path, issue 27).
 *
 * V8 decides when to run a full GC from how its heap grows and, by default, from every
 * 64 MiB of ArrayBuffer memory allocated since the last one. A cache keeps most of what it
 * receives, so those GCs find little to free, and each marks the whole heap: a 512 MiB
 * DoPut started eight, a third of the server's CPU. Tierflight's entry points start Node
 * with `--external-memory-accounted-in-global-limit` (buffer memory then counts in V8's
 * global limit, which grows with what is live, so it stops collecting every 64 MiB),
 * `--heap-growing-percent=100` (that limit is twice what the last collection left live:
 * V8's own factor came out near 1.1 with a cache's buffers counted, a full GC every
 * ~100 MiB received — 25 in five 512 MiB puts, 6 with this) and `--expose-gc`, and this
 * watch asks for a collection when it knows there is garbage: every CHECK_EVERY bytes
 * received it compares the ArrayBuffer memory V8 still holds with what the storage keeps
 * live (the memory tier's bytes), and when that difference has grown by GARBAGE_THRESHOLD
 * since the last collection it asks for one (a full GC, in a task of its own). The
 * difference is measured from where the last collection left it, because not all of it is
 * garbage (read pools, buffers in flight, replaced versions kept for their tickets): a
 * collection that frees nothing is not asked for again until as much more has come. So
 * garbage stays bounded — replaced and evicted flights, buffers written on to a disk tier
 * or another node — while kept flights cost no GC at all. Buffers made elsewhere
 * (a weak upload reading a disk tier, a store's multipart parts) are not counted as they
 * come, so it also looks once a second (CHECK_EVERY_MS) while any storage is registered;
 * and the floor sinks by FLOOR_DECAY a second, so buffers that were live when a collection
 * ran (a weak upload's, say) and died after it are collected later, not left forever.
 * Without `gc` (the process was started without the flags, as in tests) it does nothing
 * and V8 decides alone.
 */
const CHECK_EVERY = 64 * 1024 * 1024;
const CHECK_EVERY_MS = 1000;
/** How fast the floor sinks: a floor of buffers that stay (pools) costs one futile GC per ~10 s at most. */
const FLOOR_DECAY = 16 * 1024 * 1024;
/** Garbage (MiB of buffers no longer used) tolerated before a collection is asked for. */
const GARBAGE_THRESHOLD = 128 * 1024 * 1024;

type Gc = (options?: { type?: 'major' | 'minor'; execution?: 'sync' | 'async' }) => void | Promise<void>;

const providers = new Set<() => number>();
let sinceCheck = 0;
let requested = 0;
/** The least garbage seen since the last collection was asked for: what collecting cannot free. */
let floor = 0;
/** A collection was asked for and nothing was measured since. */
let pending = false;

let timer: NodeJS.Timeout | undefined;

/** Registers what the storage keeps live (bytes of buffers); returns the unregistration. */
export function keepsLive(bytes: () => number): () => void {
  providers.add(bytes);
  if (!timer && typeof (globalThis as { gc?: Gc }).gc === 'function') {
    timer = setInterval(() => {
      floor = Math.max(0, floor - FLOOR_DECAY);
      collectIfGarbage();
    }, CHECK_EVERY_MS);
    timer.unref();
  }
  return () => {
    providers.delete(bytes);
    if (providers.size === 0 && timer) {
      clearInterval(timer);
      timer = undefined;
    }
  };
}

/**
 * Counts buffer bytes just received, or just dropped by the memory tier (a replaced,
 * evicted or deleted flight: garbage at once); checks every CHECK_EVERY of them.
 */
export function received(bytes: number): void {
  sinceCheck += bytes;
  if (sinceCheck < CHECK_EVERY) return;
  sinceCheck = 0;
  collectIfGarbage();
}

/** Buffer memory V8 holds beyond what the storage keeps live: garbage not collected yet (and pools, buffers in flight). */
export function garbageBytes(): number {
  let live = 0;
  for (const p of providers) live += p();
  return Math.max(0, process.memoryUsage().arrayBuffers - live);
}

/** Asks for a major GC when the garbage grew by GARBAGE_THRESHOLD since the last one left it. */
function collectIfGarbage(): boolean {
  const gc = (globalThis as { gc?: Gc }).gc;
  if (typeof gc !== 'function') return false;
  const garbage = garbageBytes();
  // After a collection, the floor starts again from what is there and follows it down as
  // the collection (which runs in a task of its own) frees what it can.
  floor = pending ? garbage : Math.min(floor, garbage);
  pending = false;
  if (garbage - floor <= GARBAGE_THRESHOLD) return false;
  requested++;
  pending = true;
  void Promise.resolve(gc({ type: 'major', execution: 'async' })).catch(() => undefined);
  return true;
}

/** Counts a flight's bytes the memory tier just dropped: garbage at once. */
export const dropped = received;

/** How many collections were asked for (a metric and the tests read it). */
export function collectionsRequested(): number {
  return requested;
}
