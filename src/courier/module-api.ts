/**
 * The contract between the daemon and a filter module. A module is an ES module that exports
 * `doFilter` (and optionally `initFilter`), like a pythonfilter module exports `do_filter` and
 * `init_filter`.
 *
 * ```ts
 * export async function doFilter(bodyPath: string, controlPaths: readonly string[], ctx: FilterContext) {
 *   const sender = await ctx.control.getSender(controlPaths);
 *   return sender.endsWith('@spam.example') ? '550 5.7.1 Go away' : '';
 * }
 * ```
 *
 * Return values (pythonfilter's): `''` (or nothing) = no decision, run the next module;
 * `2xx …` = accept and skip the rest of this chain (Courier still runs its other filters);
 * `0xx …` = accept and make Courier skip every later filter; `4xx`/`5xx` = reject. Multi-line
 * replies are `550-line one\n550 line two` (or just `550 line one\nline two`).
 *
 * @packageDocumentation
 */
import type * as control from './helpers/control.js';
import type { CourierConfig } from './helpers/config.js';
import type { CourierMessage } from './helpers/message.js';
import type { CourierLogger } from './logging.js';

/** What a module gets at start-up. */
export interface InitContext {
  /** The module's name in the chain (its file name unless configured). */
  readonly name: string;
  /** The module's `options` from the configuration file. */
  readonly options: Readonly<Record<string, unknown>>;
  /** A logger whose lines carry the module name. */
  readonly logger: CourierLogger;
  /** Courier's configuration (me, locals, smtpaccess, aliases…). */
  readonly courier: CourierConfig;
}

/** What a module gets for each message, besides the two paths. */
export interface FilterContext extends InitContext {
  /** Control-file helpers (also importable from `milterkit/courier`). */
  readonly control: typeof control;
  /** Opens the data file for reading or in-place rewriting. */
  openMessage(): Promise<CourierMessage>;
  /**
   * The message's control files, parsed: read once per message by the chain and shared with its
   * modules, read again once a control file was written through the helpers or a `doFilter`
   * module (which may write them any way it likes) has run.
   */
  readControlFiles(): Promise<readonly control.ControlFile[]>;
  /** Aborted when this module's deadline passes; pass it to anything that can be cancelled. */
  readonly signal: AbortSignal;
  /**
   * Adds fields to the one line the chain logs for this message (a module that runs filters of
   * its own notes what each did, rather than logging a second line). A value noted twice for the
   * same field is appended, space-separated.
   */
  note(fields: Readonly<Record<string, string>>): void;
}

/** A module's per-message entry point. */
export type DoFilter = (
  bodyPath: string,
  controlPaths: readonly string[],
  context: FilterContext,
) => string | undefined | void | Promise<string | undefined | void>;

/** A filter module as loaded. */
export interface CourierFilterModule {
  doFilter: DoFilter;
  initFilter?: (context: InitContext) => void | Promise<void>;
  /**
   * Releases what `initFilter` opened (connections, files, timers). Called once, when the chain
   * the module belongs to is replaced by a reload or the daemon stops, after the messages that
   * were running on that chain have finished. It gets the context `initFilter` got, so entries
   * that share one file can tell themselves apart.
   */
  closeFilter?: (context: InitContext) => void | Promise<void>;
}
