/**
 * Logging for the Courier daemon. courierfilter turns every line a filter writes to stdout or
 * stderr into one syslog line, so records are single-line JSON on stderr without a timestamp
 * (syslog adds one).
 *
 * @packageDocumentation
 */
import { pino, type Logger } from 'pino';

/** The logger type used across the Courier side of milterkit (pino-compatible). */
export type CourierLogger = Pick<Logger, 'info' | 'warn' | 'error' | 'debug' | 'child'>;

let sharedLogger: CourierLogger | undefined;

/** Creates a single-line JSON logger that writes to the given file descriptor (stderr by default). */
export function createCourierLogger(options: { name?: string; level?: string; fd?: number } = {}): Logger {
  return pino(
    {
      name: options.name ?? 'milterkit-courier',
      level: options.level ?? 'info',
      timestamp: false,
      base: undefined,
      formatters: { level: (label) => ({ level: label }) },
    },
    pino.destination({ fd: options.fd ?? 2, sync: true }),
  );
}

/**
 * The process-wide logger that helpers use when the caller passes none (recipient removals are
 * always logged, even from a module that forgot to).
 */
export function helperLogger(): CourierLogger {
  sharedLogger ??= createCourierLogger({ level: process.env.MILTERKIT_LOG_LEVEL ?? 'info' });
  return sharedLogger;
}

/** Replaces the process-wide helper logger (the daemon installs its own at startup). */
export function setHelperLogger(logger: CourierLogger): void {
  sharedLogger = logger;
}
