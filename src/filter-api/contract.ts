/**
 * The filter contract: what a filter is, once, for every MTA. A filter has a name, an options
 * schema (JSON Schema, checked when the chain loads), an optional `init` and stage hooks. Hooks are
 * `async`, get the {@link Transaction}, and answer with a {@link Decision}.
 *
 * @example
 * ```ts
 * import { defineFilter, reject } from 'milterkit/filters';
 *
 * export default defineFilter({
 *   name: 'no-exe',
 *   options: { type: 'object', properties: { pattern: { type: 'string', default: '\\.exe$' } } },
 *   async message(tx, message, ctx) {
 *     const { attachments } = await message.parsed();
 *     const pattern = new RegExp(String(ctx.options.pattern), 'i');
 *     if (attachments.some((a) => pattern.test(a.filename ?? ''))) return reject('No executables, please');
 *   },
 * });
 * ```
 *
 * @packageDocumentation
 */
import type { Logger } from '../log.js';
import type { HookResult } from './decisions.js';
import type { EditKind, Edits } from './draft.js';
import type { MessageView } from './message.js';
import type { Recipient, Transaction } from './transaction.js';

/** The hook stages, in the order a message passes them. */
export type HookStage = 'connect' | 'sender' | 'recipient' | 'message';
export const HOOK_STAGES: readonly HookStage[] = ['connect', 'sender', 'recipient', 'message'];

/** Facts a filter reads from the transaction that not every MTA sends unasked (the milter front-end asks for their macros). */
export type TransactionFacet = 'auth' | 'tls' | 'queueId';

/** Milter macro stages, for filters that read raw macros. */
export type MacroStage = 'connect' | 'helo' | 'envfrom' | 'envrcpt' | 'data' | 'eoh' | 'eom';

/** A JSON Schema (draft 2020-12 subset that Ajv understands) for a filter's options. */
export type OptionsSchema = Readonly<Record<string, unknown>>;

/** What `init` gets. */
export interface InitContext<O> {
  /** The filter's name in the chain. */
  readonly name: string;
  /** The options from the configuration, checked against the schema, defaults filled in. */
  readonly options: O;
  readonly log: Logger;
}

/** What every hook gets besides the transaction. */
export interface HookContext<O, R> {
  readonly name: string;
  readonly options: O;
  /** What `init` returned (connections, compiled patterns...). */
  readonly resources: R;
  readonly log: Logger;
  /** Fires at the hook's deadline, when the MTA aborts the message, and on disconnect. */
  readonly signal: AbortSignal;
  /** Edits of the envelope and body (header edits go through `message.headers`). */
  readonly edit: Edits;
  /** This filter's own values for the current message, kept from hook to hook. */
  readonly state: Map<string, unknown>;
}

/**
 * A filter. Every hook is optional; the front-ends run only the stages some filter needs.
 * @typeParam O the options after validation
 * @typeParam R what `init` returns
 */
export interface FilterDefinition<O = Record<string, unknown>, R = undefined> {
  /** Default name in the chain and in logs. */
  readonly name: string;
  /** One line saying what the filter does (shown by `check-config`). */
  readonly description?: string;
  /** JSON Schema of the options. Unknown option keys are errors unless the schema allows them. */
  readonly options?: OptionsSchema;
  /** The edits the filter may make; anything else is refused (and not negotiated with the MTA). */
  readonly edits?: readonly EditKind[];
  /** Transaction facts the filter reads. */
  readonly needs?: readonly TransactionFacet[];
  /** Raw milter macros the filter reads from `tx.raw.macros`, by stage. */
  readonly macros?: Readonly<Partial<Record<MacroStage, readonly string[]>>>;
  /** Runs once when the chain loads; what it returns reaches every hook as `ctx.resources`. */
  init?(context: InitContext<O>): R | Promise<R>;
  /** Runs when the chain is closed (daemon stop or reload): release what `init` took. */
  close?(resources: R): void | Promise<void>;
  /** The client is known: address, host name, HELO. */
  connect?(tx: Transaction, ctx: HookContext<O, R>): HookResult | Promise<HookResult>;
  /** The envelope sender is known. */
  sender?(tx: Transaction, ctx: HookContext<O, R>): HookResult | Promise<HookResult>;
  /** One recipient; `reject`/`tempfail` refuse this recipient only. */
  recipient?(tx: Transaction, recipient: Recipient, ctx: HookContext<O, R>): HookResult | Promise<HookResult>;
  /** The complete message. */
  message?(tx: Transaction, message: MessageView, ctx: HookContext<O, R>): HookResult | Promise<HookResult>;
}

/** A filter of any options and resources types, as the chain holds it. */
// `any` here: the chain holds filters of unrelated option types; each hook gets its own.
export type AnyFilter = FilterDefinition<any, any>;

/** Marks definitions made by {@link defineFilter}; a registry symbol, so that it holds across copies of the package. */
const FILTER_MARK: unique symbol = Symbol.for('milterkit.filter-definition') as never;

/** Checks a definition's shape and returns it, typed and marked; use it as a module's default export. */
export function defineFilter<O = Record<string, unknown>, R = undefined>(definition: FilterDefinition<O, R>): FilterDefinition<O, R> {
  checkDefinition(definition, definition?.name ?? 'filter');
  if (!Object.isFrozen(definition)) Object.defineProperty(definition, FILTER_MARK, { value: true });
  return definition;
}

/** True for a definition made by {@link defineFilter} (what a module exports to be run as a filter). */
export function isFilterDefinition(value: unknown): value is AnyFilter {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[FILTER_MARK] === true;
}

const EDIT_KINDS: ReadonlySet<string> = new Set(['headers', 'recipients', 'sender', 'body', 'quarantine']);
const FACETS: ReadonlySet<string> = new Set(['auth', 'tls', 'queueId']);
const FUNCTIONS = ['init', 'close', ...HOOK_STAGES] as const;

/**
 * Checks that a value is a filter definition.
 * @throws TypeError naming `where` and what is wrong
 */
export function checkDefinition(definition: unknown, where: string): asserts definition is AnyFilter {
  if (typeof definition !== 'object' || definition === null) throw new TypeError(`${where}: a filter is an object made with defineFilter()`);
  const d = definition as Record<string, unknown>;
  if (typeof d.name !== 'string' || !/^[A-Za-z0-9_.-]+$/.test(d.name)) throw new TypeError(`${where}: a filter needs a name of letters, digits, _ . -`);
  for (const key of FUNCTIONS) {
    if (d[key] !== undefined && typeof d[key] !== 'function') throw new TypeError(`${where}: ${key} must be a function`);
  }
  if (!HOOK_STAGES.some((stage) => typeof d[stage] === 'function')) throw new TypeError(`${where}: a filter needs at least one hook (${HOOK_STAGES.join(', ')})`);
  for (const kind of (d.edits as unknown[] | undefined) ?? []) {
    if (!EDIT_KINDS.has(kind as string)) throw new TypeError(`${where}: unknown edit kind "${String(kind)}" (known: ${[...EDIT_KINDS].join(', ')})`);
  }
  for (const facet of (d.needs as unknown[] | undefined) ?? []) {
    if (!FACETS.has(facet as string)) throw new TypeError(`${where}: unknown need "${String(facet)}" (known: ${[...FACETS].join(', ')})`);
  }
  if (d.options !== undefined && (typeof d.options !== 'object' || d.options === null)) throw new TypeError(`${where}: options must be a JSON Schema object`);
}
