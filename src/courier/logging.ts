/**
 * The logger the Courier side writes to. The daemon's owner creates it (the command line writes
 * single-line JSON to stderr, which courierfilter turns into syslog lines) and passes it down:
 * to the chain, to each module through its context, and to the helpers that must log.
 *
 * @packageDocumentation
 */
import type { Logger } from 'pino';

/** The logger type used across the Courier side of milterkit (pino-compatible). */
export type CourierLogger = Pick<Logger, 'info' | 'warn' | 'error' | 'debug' | 'child'>;
