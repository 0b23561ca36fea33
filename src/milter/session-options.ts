/** Options of a milter-side session, and what it needs from its transport. */
import type { Logger } from '../log.js';
import type { CompiledFilter, MilterFilter } from './filter.js';

/** The verdict sent when a callback throws, rejects or times out. */
export type ErrorVerdict = 'tempfail' | 'reject' | 'accept' | 'continue';

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
