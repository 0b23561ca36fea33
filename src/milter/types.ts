/** Public types of the filter API. */
import type { AddressFamily, ConnectInfo, MacroStageName, NegotiationOffer, NegotiationRequest, StageName } from '../protocol/codec.js';

/**
 * What a callback answers. `continue` goes on; `accept` ends filtering of the message (or of the
 * connection at connect/helo) and lets it through; `reject` and `tempfail` refuse (only the one
 * recipient when returned from `envrcpt`); `discard` accepts then drops the whole message; `skip`
 * (from `body` only) asks for no more body chunks; `noreply` is for callbacks declared in
 * `options.noReply`. Returning nothing means `continue`.
 */
export type Verdict = 'continue' | 'accept' | 'reject' | 'tempfail' | 'discard' | 'skip' | 'noreply';

/** What a callback may return. */
export type CallbackResult = Verdict | void | undefined | Promise<Verdict | void | undefined>;

/** Verdict constants, for code that prefers pymilter's spelling. */
export const CONTINUE = 'continue';
export const ACCEPT = 'accept';
export const REJECT = 'reject';
export const TEMPFAIL = 'tempfail';
export const DISCARD = 'discard';
export const SKIP = 'skip';
export const NOREPLY = 'noreply';


/** Names of the modification actions, for `options.actions`. */
export type ActionName =
  | 'addHeader'
  | 'insertHeader'
  | 'changeHeader'
  | 'deleteHeader'
  | 'replaceBody'
  | 'addRecipient'
  | 'addRecipientWithArgs'
  | 'deleteRecipient'
  | 'changeFrom'
  | 'quarantine';


/** Static options of a filter class. */
export interface MilterOptions {
  /**
   * Actions the filter needs. The MTA must offer them or the connection is refused with a clear
   * error. When omitted, every action the MTA offers is requested.
   */
  actions?: ActionName[];
  /** Callbacks whose verdict the MTA should not wait for (`SMFIP_NR_*`); they must return `continue` or `noreply`. */
  noReply?: StageName[];
  /** Macro names to ask the MTA for, per stage (setsymlist). */
  macros?: Partial<Record<MacroStageName, string[]>>;
  /** Ask for SKIP so that `body` may return `skip`. */
  skip?: boolean;
  /** Ask to see recipients the MTA itself rejected (`SMFIP_RCPT_REJ`). */
  rcptRejected?: boolean;
  /** Ask for header values with their leading space kept, and send edits verbatim (`SMFIP_HDR_LEADSPC`). */
  headerLeadingSpace?: boolean;
  /**
   * `body()` is given the body chunk where it was read, as libmilter does: valid only until
   * `body()` returns (an async `body()`: until its first `await`), as the next read overwrites it.
   * A filter that keeps bytes of a chunk copies them (`Buffer.from(chunk)`). Saves a copy of every
   * body chunk, which is most of a milter's work with large messages. Default false: every chunk
   * is the filter's own to keep.
   */
  borrowedBody?: boolean;
}

/** What the `negotiate` callback may return. */
export type NegotiateResult = NegotiationRequest | 'all-options' | 'reject' | 'continue' | void | undefined;

export type { NegotiationOffer, NegotiationRequest, AddressFamily, ConnectInfo, StageName, MacroStageName };
