import { pino, type Logger } from 'pino';

/**
 * The one logger. Library code takes a child of it; nothing calls `console`.
 * JSON lines on stdout; level from TIERFLIGHT_LOG_LEVEL (default `info`).
 */
export type { Logger };

export function createLogger(level = process.env.TIERFLIGHT_LOG_LEVEL ?? 'info'): Logger {
  return pino({ level, base: { service: 'tierflight' } });
}

/** A logger that discards everything, for unit tests and library defaults. */
export const silentLogger: Logger = pino({ level: 'silent' });
