/**
 * The logger the library writes to: the subset of pino's interface it uses, so a pino logger
 * (what the CLI uses) or any compatible object can be passed in. The protocol core stays free of
 * runtime dependencies.
 */
export interface Logger {
  error(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  info(fields: object, message: string): void;
  debug(fields: object, message: string): void;
  child?(fields: object): Logger;
}

const ignore = (): void => {};

/** A logger that discards everything. */
export const silentLogger: Logger = { error: ignore, warn: ignore, info: ignore, debug: ignore };

/** Returns a child logger with extra fields, when the logger supports it. */
export function childLogger(logger: Logger, fields: object): Logger {
  return logger.child ? logger.child(fields) : logger;
}
