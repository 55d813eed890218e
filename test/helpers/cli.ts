import path from 'node:path';
import { SERVE_NODE_FLAGS } from '../../src/cli/node-flags.js';
import { ROOT } from '../setup/python-env.js';

/**
 * The command that runs the `tierflight` CLI from the sources, as a separate process, with
 * the Node flags a server runs with; append its arguments.
 */
export const TIERFLIGHT_CLI = [
  process.execPath,
  ...SERVE_NODE_FLAGS,
  '--import',
  'tsx',
  path.join(ROOT, 'src/cli/main.ts'),
];
