import { pino, type Logger } from 'pino';
import { prettyFactory } from 'pino-pretty';

/**
 * The one logger. Library code takes a child of it; nothing calls `console`.
 *
 * Two formats: `json` (one JSON object per line, for log collectors) and `pretty` (pino's
 * own pretty printer: time, level, message and the fields on one readable line). A server
 * on a terminal logs pretty unless told otherwise; anything else (a pipe, a file, a
 * container's log driver) gets JSON. Level from `--log-level`, else TIERFLIGHT_LOG_LEVEL,
 * else `info`.
 */
export type { Logger };

export const LOG_FORMATS = ['json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export interface LogOptions {
  level?: string;
  format?: string;
  /** The stream to write to (stdout by default). */
  destination?: NodeJS.WritableStream & { isTTY?: boolean; fd?: number };
}

/** What is wrong with these options, for the command line to report; undefined when nothing is. */
export function logOptionsProblem(options: LogOptions): string | undefined {
  const level = options.level ?? process.env.TIERFLIGHT_LOG_LEVEL;
  if (level !== undefined && !(LOG_LEVELS as readonly string[]).includes(level)) {
    const from = options.level !== undefined ? '--log-level' : 'TIERFLIGHT_LOG_LEVEL';
    return `${from} must be one of ${LOG_LEVELS.join(', ')}; got "${level}"`;
  }
  if (options.format !== undefined && !(LOG_FORMATS as readonly string[]).includes(options.format))
    return `--log-format must be json or pretty; got "${options.format}"`;
  return undefined;
}

export function createLogger(options: LogOptions = {}): Logger {
  const level = options.level ?? process.env.TIERFLIGHT_LOG_LEVEL ?? 'info';
  const destination = options.destination ?? process.stdout;
  const format: LogFormat = (options.format as LogFormat | undefined) ?? (destination.isTTY ? 'pretty' : 'json');
  const base = { service: 'tierflight' };
  if (format === 'json') {
    return options.destination ? pino({ level, base }, options.destination) : pino({ level, base });
  }
  // In-process and synchronous, so the last lines before an exit are on the terminal.
  const pretty = prettyFactory({
    colorize: destination.isTTY === true,
    translateTime: 'SYS:yyyy-mm-dd HH:MM:ss.l',
    ignore: 'hostname,service',
    singleLine: true,
  });
  return pino(
    { level, base },
    {
      write(line: string): void {
        destination.write(pretty(line));
      },
    },
  );
}

/** A logger that discards everything, for unit tests and library defaults. */
export const silentLogger: Logger = pino({ level: 'silent' });
