/**
 * Exit statuses of every `milterkit` command. A command line that cannot be used always exits
 * with {@link ExitStatus.USAGE} (64, sysexits' EX_USAGE), before anything is started.
 */
export const ExitStatus = {
  /** Done. */
  OK: 0,
  /** `test`/`send`: the message was accepted (also when quarantined). */
  ACCEPT: 0,
  /** A failure that is not the command line's: cannot listen, a filter module that cannot be loaded. */
  FAILURE: 1,
  /** `test`/`send`: the message was rejected. */
  REJECT: 3,
  /** `test`/`send`: the message was temporarily refused. */
  TEMPFAIL: 4,
  /** `test`/`send`: the message was discarded. */
  DISCARD: 5,
  /** `test`/`send`: the milter failed (protocol error, timeout, connection refused or lost). */
  ERROR: 6,
  /** `courier`: another daemon already serves this filter's socket. */
  ALREADY_RUNNING: 3,
  /** The command line cannot be used: unknown command or option, bad value, missing argument. */
  USAGE: 64,
} as const;

/** A command line that cannot be used; the command prints the message and its usage and exits {@link ExitStatus.USAGE}. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}
