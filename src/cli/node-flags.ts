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
