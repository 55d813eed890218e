import { SERVE_ENV } from '../../src/cli/node-flags.js';

/**
 * The servers the suite spawns run with the environment `npm start` and the `tierflight`
 * command give them (SERVE_ENV); the test workers and every process they start inherit it.
 */
export default function setup(): void {
  Object.assign(process.env, SERVE_ENV);
}
