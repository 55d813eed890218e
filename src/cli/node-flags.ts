/**
 * The Node flags a server runs with (core/garbage.ts says why): the `tierflight` command's
 * shebang, `npm start`, the Docker image's entrypoint and the README carry the same list,
 * which test/cli/node-flags.test.ts checks; the benchmarks and the tests' servers use this.
 */
export const SERVE_NODE_FLAGS = [
  '--initial-old-space-size=256',
  '--external-memory-accounted-in-global-limit',
  '--heap-growing-percent=100',
  '--expose-gc',
] as const;

/**
 * The environment a server runs with, set the same ways. glibc's malloc serves buffers of
 * up to 32 MiB from its heap instead of fresh mmap()s, so the memory of replaced, evicted
 * and expired flights is reused by the next puts rather than returned to the kernel and
 * faulted in and zeroed again: a DoPut's server CPU falls by about a fifth (bench/README).
 * The cost: the process keeps its high-water mark; after a mass delete the freed memory
 * stays resident until puts reuse it.
 */
export const SERVE_ENV = { MALLOC_MMAP_THRESHOLD_: String(32 * 1024 * 1024) } as const;

/** `NAME=value …` of SERVE_ENV, as a shell or `env` takes it. */
export const SERVE_ENV_WORDS = Object.entries(SERVE_ENV)
  .map(([k, v]) => `${k}=${v}`)
  .join(' ');
