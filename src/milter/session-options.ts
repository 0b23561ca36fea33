/**
 * Options of a milter-side session, their defaults with the reason for each, the check that
 * refuses a bad value at construction, and what a session needs from its transport.
 */
import type { Logger } from '../log.js';
import { checkChoice, checkInteger } from '../validate.js';
import type { CompiledFilter, MilterFilter } from './filter.js';

/** Answers a failed callback may get, the safe one first. */
export const ERROR_VERDICTS = ['tempfail', 'reject', 'accept', 'continue'] as const;

/** The verdict sent when a callback throws, rejects or times out. */
export type ErrorVerdict = (typeof ERROR_VERDICTS)[number];

/** Defaults of {@link SessionOptions}, each with its reason. */
export const SESSION_DEFAULTS = {
  /** A failed filter must never let mail through by accident: the MTA retries a tempfail later. */
  errorVerdict: 'tempfail' as ErrorVerdict,
  /**
   * 1 MiB: above every payload an MTA sends (Sendmail and Postfix offer at most 1 MiB - 1 bytes,
   * SMFI_V2's largest); anything longer is an error rather than memory spent.
   */
  maxPayload: 1024 * 1024,
  /**
   * 300 s: Postfix waits milter_content_timeout = 300 s for an end-of-message answer and
   * Sendmail's E: timeout is 5 min; a callback still running then has lost the MTA anyway.
   */
  callbackTimeoutMs: 300_000,
  /**
   * 5 s: well inside Sendmail's 10 s read timeout (R:) and Postfix's 30 s command timeout, so a
   * slow end of message never makes the MTA give up while the filter works.
   */
  progressIntervalMs: 5000,
  /** 4 MiB of pipelined packets (headers the MTA was told not to wait for) before reading pauses. */
  maxQueuedBytes: 4 * 1024 * 1024,
} as const;

/** Smallest `maxPayload` accepted: room for the negotiation packet and a short command. */
const MIN_PAYLOAD_LIMIT = 64;
/** Largest `maxPayload` accepted: the protocol's length field allows more, no MTA sends it. */
const MAX_PAYLOAD_LIMIT = 64 * 1024 * 1024;
/** Longest timer Node.js keeps (about 24.8 days); longer values would fire at once. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** Session options with every default filled in and every value checked. */
export interface ResolvedSessionOptions {
  errorVerdict: ErrorVerdict;
  maxPayload: number;
  callbackTimeout: number;
  progressInterval: number;
  maxQueuedBytes: number;
  shadow: boolean;
}

/**
 * Fills in the defaults and checks every value.
 * @throws InvalidOptionError naming the option and what it accepts
 */
export function resolveSessionOptions(options: Omit<SessionOptions, 'filter'>): ResolvedSessionOptions {
  return {
    errorVerdict: checkChoice('errorVerdict', options.errorVerdict ?? SESSION_DEFAULTS.errorVerdict, ERROR_VERDICTS),
    maxPayload: checkInteger('maxPayload', options.maxPayload ?? SESSION_DEFAULTS.maxPayload, MIN_PAYLOAD_LIMIT, MAX_PAYLOAD_LIMIT),
    callbackTimeout: checkInteger('callbackTimeout', options.callbackTimeout ?? SESSION_DEFAULTS.callbackTimeoutMs, 1, MAX_TIMER_MS),
    progressInterval: checkInteger('progressInterval', options.progressInterval ?? SESSION_DEFAULTS.progressIntervalMs, 0, MAX_TIMER_MS),
    maxQueuedBytes: checkInteger('maxQueuedBytes', options.maxQueuedBytes ?? SESSION_DEFAULTS.maxQueuedBytes, 1),
    shadow: options.shadow === true,
  };
}

/** Options of a session (and of the server, which passes them on). */
export interface SessionOptions {
  /** The filter: a Milter subclass, a factory, or a plain object of callbacks. */
  filter: MilterFilter | CompiledFilter;
  /** Verdict for a callback that throws, rejects or times out (default `tempfail`). */
  errorVerdict?: ErrorVerdict;
  /** Largest incoming payload in bytes (default 1 MiB). */
  maxPayload?: number;
  /** Longest a callback may take, in ms, before it counts as failed (default 300 000). */
  callbackTimeout?: number;
  /** While eom() runs longer than this (ms), send PROGRESS this often so the MTA keeps waiting (default 5000; 0 disables). */
  progressInterval?: number;
  /** Bytes of pipelined packets held while a callback runs before reading pauses (default 4 MiB). */
  maxQueuedBytes?: number;
  /**
   * Dry run: callbacks decide and act as usual, every reject, tempfail, discard and modification is
   * logged as what would have happened, and the MTA is told to continue. For trying a filter on
   * live mail without touching it.
   */
  shadow?: boolean;
  logger?: Logger;
  /** Connection number for logs. */
  id?: number;
}

/** What the session needs from its transport. */
export interface SessionIO {
  write(data: Buffer): void;
  close(): void;
  /** Stop reading (backpressure); optional. */
  pause?(): void;
  resume?(): void;
}

/** A milter-side session as its transport drives it: bytes in, end of input, and its end. */
export interface MilterSessionHandle {
  /** Connection number, as in the logs. */
  readonly id: number;
  /** Resolves once the session has ended and the filter's `close()` has run. */
  readonly closed: Promise<void>;
  /** True when no callback runs and no packet waits: everything received has been answered. */
  readonly idle: boolean;
  /** Bytes received from the MTA. */
  receive(chunk: Buffer): void;
  /** The MTA closed its side of the connection. */
  end(): void;
  /** Ends the session now (abort and close callbacks still run); `force` skips waiting for a running callback. */
  terminate(reason: string, force?: boolean): void;
}
