import { ConfigError, parseConfigText } from '../../src/config/load.js';

/** The errors a config text gets, as `tierflight validate` prints them; '' when it is valid. */
export function configErrors(yaml: string, file: string): string {
  try {
    parseConfigText(yaml, file);
    return '';
  } catch (err) {
    if (err instanceof ConfigError) return err.message;
    throw err;
  }
}
