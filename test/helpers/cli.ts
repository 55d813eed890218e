import path from 'node:path';
import { ROOT } from '../setup/python-env.js';

/** The command that runs the `tierflight` CLI from the sources, as a separate process; append its arguments. */
export const TIERFLIGHT_CLI = [process.execPath, '--import', 'tsx', path.join(ROOT, 'src/cli/main.ts')];
