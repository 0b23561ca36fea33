/**
 * The one logger factory of the command line (`milterkit serve`, `milterkit courier`): pino,
 * JSON lines, the level as its name. Every record carries `name` (the program or Courier filter
 * name), `level`, `msg`, and where they apply `event` (a short kebab-case name of what happened),
 * `conn` (the connection number) and `err` — always an Error, written as `{type, message, stack}`.
 */
import { pino, type Logger as PinoLogger } from 'pino';

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  /** Value of the `name` field of every record. */
  name: string;
  /** Lowest level written: `fatal`, `error`, `warn`, `info`, `debug`. */
  level: string;
  /** File descriptor written to (stdout by default). */
  fd?: number;
  /**
   * Add a `time` field. Off under courierfilter, which turns each line into a syslog line with
   * its own time stamp.
   */
  timestamp?: boolean;
}

/** Serialises `err` the same way whatever a caller passed: an Error as pino writes one, anything else as the message of one. */
function serializeError(value: unknown): object {
  if (value instanceof Error) return pino.stdSerializers.err(value);
  return { type: 'Error', message: typeof value === 'string' ? value : JSON.stringify(value) };
}

/** The logging levels a `--log-level` option accepts. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug'] as const;

/** Creates the process logger. Writes synchronously, so the last lines before an exit are not lost. */
export function createLogger(options: LoggerOptions): PinoLogger {
  return pino(
    {
      name: options.name,
      level: options.level,
      base: undefined,
      timestamp: options.timestamp === false ? false : pino.stdTimeFunctions.epochTime,
      formatters: { level: (label) => ({ level: label }) },
      serializers: { err: serializeError },
    },
    pino.destination({ fd: options.fd ?? 1, sync: true }),
  );
}
