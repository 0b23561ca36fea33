/**
 * The chain engine: an ordered list of filters run over one message, stage by stage, with the
 * same semantics whatever the front-end. Filters run in chain order at every stage; a decision
 * ends the chain as follows:
 *
 * - `accept`: the deciding filter and every filter after it stop for this message; the filters
 *   before it still run their later hooks (as they would have run them first on Courier). With a
 *   `for` list, only the filters named there stop.
 * - `reject` / `tempfail`: the message is refused; from a recipient hook, only that recipient.
 * - `discard`: the message is accepted and dropped.
 * - `quarantine`: every other filter stops; the message is accepted with the edits so far and held.
 *
 * A filter marked `trusting` does not run for authenticated senders; one marked `testing` has its
 * decisions and edits logged and dropped; a `shadow` chain logs what it would have done and lets
 * every message through untouched. A hook that throws or returns nonsense gets its filter's
 * `onError` outcome, one that outlives its deadline its `onTimeout` outcome.
 *
 * @packageDocumentation
 */
import { childLogger, silentLogger, type Logger } from '../log.js';
import type { AnyFilter, HookStage, MacroStage, TransactionFacet } from './contract.js';
import { HOOK_STAGES } from './contract.js';
import { DEFAULT_REJECT, DEFAULT_TEMPFAIL, describeDecision, type Decision, type SmtpReply } from './decisions.js';
import { Draft, EditError, type EditKind, type EditLimits, type UnsupportedEdits } from './draft.js';
import { HeaderList } from './headers.js';
import { MessageView, type MessageContent } from './message.js';
import { validateOptions } from './options.js';
import { HookCallContext, type HookContextSource } from './hook-context.js';
import { HookDeadlines, HookScope, runHook, type HookRun } from './run-hook.js';
import type { AuthInfo, ClientInfo, RawMtaData, Recipient, Sender, TlsInfo, Transaction } from './transaction.js';

/** What a failing or hanging filter does to the message. */
export type FailurePolicy = 'tempfail' | 'reject' | 'continue';
export const FAILURE_POLICIES: readonly FailurePolicy[] = ['tempfail', 'reject', 'continue'];

/** One filter's place in a chain. */
export interface ChainEntryConfig {
  readonly filter: AnyFilter;
  /** Name in logs and in `for` lists (default: the filter's name). */
  readonly name?: string;
  /** Options, checked against the filter's schema. */
  readonly options?: unknown;
  /** pythonfilter's bypass: when this filter accepts, skip only these filters and go on. */
  readonly for?: readonly string[];
  /** Skip this filter for authenticated senders. */
  readonly trusting?: boolean;
  /** Log this filter's decisions and edits, never apply them. */
  readonly testing?: boolean;
  /** Milliseconds each hook of this filter may take (default 30 s). */
  readonly timeoutMs?: number;
  readonly onError?: FailurePolicy;
  readonly onTimeout?: FailurePolicy;
}

/** A chain's settings. */
export interface ChainConfig {
  readonly filters: readonly ChainEntryConfig[];
  /** Accept mail from authenticated senders without running any filter. */
  readonly trusting?: boolean;
  /** Run everything, log what would happen, let every message through unchanged. */
  readonly shadow?: boolean;
  /** Replies for failure policies. */
  readonly replies?: { readonly tempfail?: SmtpReply; readonly reject?: SmtpReply };
  readonly limits?: Partial<EditLimits>;
  readonly logger?: Logger;
  /**
   * Log one line per message with its outcome (default true). A front-end that logs each message
   * itself passes false and puts {@link MessageRun.trace} into its own line, so that a message
   * gets one line, not two.
   */
  readonly logMessages?: boolean;
}

/** A loaded chain entry. */
export interface ChainEntry {
  readonly name: string;
  readonly filter: AnyFilter;
  readonly options: Readonly<Record<string, unknown>>;
  readonly resources: unknown;
  readonly for: readonly string[];
  readonly trusting: boolean;
  readonly testing: boolean;
  readonly timeoutMs: number;
  readonly onError: FailurePolicy;
  readonly onTimeout: FailurePolicy;
  readonly edits: ReadonlySet<EditKind>;
  /** The declared edits a sender or recipient hook may make (the envelope ones). */
  readonly envelopeEdits: ReadonlySet<EditKind>;
  readonly log: Logger;
}

/** A problem with a chain's settings, naming the filter. */
export class ChainConfigError extends Error {
  override readonly name = 'ChainConfigError';
  constructor(
    message: string,
    /** Index of the chain entry at fault, when there is one. */
    readonly entry?: number,
    /** Path of the bad value below the entry (e.g. `['options', 'pattern']`). */
    readonly path: readonly (string | number)[] = [],
  ) {
    super(message);
  }
}

/** What a chain needs from the MTA: the front-ends negotiate exactly this. */
export interface ChainNeeds {
  readonly stages: ReadonlySet<HookStage>;
  readonly edits: ReadonlySet<EditKind>;
  readonly facets: ReadonlySet<TransactionFacet>;
  readonly macros: Readonly<Partial<Record<MacroStage, readonly string[]>>>;
}

export const DEFAULT_TIMEOUT_MS = 30_000;
export const DEFAULT_LIMITS: EditLimits = { maxBodyBytes: 64 * 1024 * 1024, maxRecipients: 1000 };

/** A loaded, ready chain. Build it once at start-up; run it per connection and message. */
export class Chain {
  readonly needs: ChainNeeds;
  /** @internal The entries with a hook for each stage, in chain order. */
  readonly hooked: Readonly<Record<HookStage, readonly ChainEntry[]>>;
  /** @internal The deadlines of every running hook of the chain, behind one timer. */
  readonly deadlines = new HookDeadlines();

  private constructor(
    readonly entries: readonly ChainEntry[],
    readonly trusting: boolean,
    readonly shadow: boolean,
    readonly replies: { readonly tempfail: SmtpReply; readonly reject: SmtpReply },
    readonly limits: EditLimits,
    readonly log: Logger,
    readonly logMessages: boolean,
  ) {
    this.needs = chainNeeds(entries, trusting);
    const hooked = (stage: HookStage): ChainEntry[] => entries.filter((entry) => typeof entry.filter[stage] === 'function');
    this.hooked = { connect: hooked('connect'), sender: hooked('sender'), recipient: hooked('recipient'), message: hooked('message') };
  }

  /**
   * Checks the settings, validates every filter's options and runs every `init`.
   * @throws ChainConfigError naming the entry (and the option) at fault
   */
  static async load(config: ChainConfig): Promise<Chain> {
    const log = config.logger ?? silentLogger;
    const checked = Chain.check(config);
    const entries: ChainEntry[] = [];
    for (const [index, entry] of config.filters.entries()) {
      const { name, options } = checked[index]!;
      const entryLog = childLogger(log, { filter: name });
      let resources: unknown;
      try {
        resources = await entry.filter.init?.({ name, options, log: entryLog });
      } catch (error) {
        await closeEntries(entries);
        throw new ChainConfigError(`filter "${name}" failed to start: ${(error as Error).message}`, index);
      }
      entries.push({
        name,
        filter: entry.filter,
        options,
        resources,
        for: entry.for ?? [],
        trusting: entry.trusting ?? false,
        testing: entry.testing ?? false,
        timeoutMs: entry.timeoutMs ?? DEFAULT_TIMEOUT_MS,
        onError: entry.onError ?? 'tempfail',
        onTimeout: entry.onTimeout ?? 'tempfail',
        edits: new Set(entry.filter.edits ?? []),
        envelopeEdits: new Set((entry.filter.edits ?? []).filter((kind) => kind === 'recipients' || kind === 'sender')),
        log: entryLog,
      });
    }
    return new Chain(
      entries,
      config.trusting ?? false,
      config.shadow ?? false,
      { tempfail: config.replies?.tempfail ?? DEFAULT_TEMPFAIL, reject: config.replies?.reject ?? DEFAULT_REJECT },
      { ...DEFAULT_LIMITS, ...config.limits },
      log,
      config.logMessages ?? true,
    );
  }

  /**
   * Checks a chain's settings without starting any filter: names, `for` lists, options.
   * @returns each entry's name and options with the schema's defaults filled in
   * @throws ChainConfigError naming the entry (and the option) at fault
   */
  static check(config: ChainConfig): Array<{ name: string; options: Record<string, unknown> }> {
    const names = config.filters.map((entry) => entry.name ?? entry.filter.name);
    names.forEach((name, index) => {
      if (names.indexOf(name) !== index) throw new ChainConfigError(`the name "${name}" is used twice in the chain (give one a name)`, index, ['name']);
    });
    return config.filters.map((entry, index) => {
      const name = names[index]!;
      for (const other of entry.for ?? []) {
        const at = names.indexOf(other);
        if (at < 0) throw new ChainConfigError(`"${name}" for ${other}: no filter of that name in the chain`, index, ['for']);
        if (at <= index) throw new ChainConfigError(`"${name}" for ${other}: a filter can only bypass filters after it`, index, ['for']);
      }
      try {
        return { name, options: validateOptions(entry.filter, entry.options) };
      } catch (error) {
        const path = (error as { path?: (string | number)[] }).path ?? [];
        throw new ChainConfigError(`filter "${name}": ${(error as Error).message}`, index, ['options', ...path]);
      }
    });
  }

  /**
   * Starts serving one SMTP connection (on Courier: one message).
   * @param unsupported the edits this front-end cannot make: a hook that tries one fails
   */
  connection(client: ClientInfo, raw: RawMtaData, unsupported: UnsupportedEdits = {}): ConnectionRun {
    return new ConnectionRun(this, client, raw, unsupported);
  }

  private closing: Promise<void> | undefined;

  /** Runs every filter's `close` once (errors are logged). */
  close(): Promise<void> {
    this.closing ??= closeEntries(this.entries);
    return this.closing;
  }
}

async function closeEntries(entries: readonly ChainEntry[]): Promise<void> {
  for (const entry of entries) {
    try {
      await entry.filter.close?.(entry.resources);
    } catch (error) {
      entry.log.error({ event: 'filter-close-failed', err: (error as Error).message }, `filter "${entry.name}" failed to close: ${(error as Error).message}`);
    }
  }
}

/** What a chain with these entries needs from the MTA (known before any filter starts). */
export function chainNeeds(entries: readonly { readonly filter: AnyFilter; readonly trusting?: boolean }[], trusting: boolean): ChainNeeds {
  const stages = new Set<HookStage>();
  const edits = new Set<EditKind>();
  const facets = new Set<TransactionFacet>();
  const macros: Partial<Record<MacroStage, string[]>> = {};
  if (trusting || entries.some((entry) => entry.trusting)) facets.add('auth');
  for (const entry of entries) {
    for (const stage of HOOK_STAGES) if (typeof entry.filter[stage] === 'function') stages.add(stage);
    for (const kind of entry.filter.edits ?? []) edits.add(kind);
    for (const facet of entry.filter.needs ?? []) facets.add(facet);
    for (const [stage, names] of Object.entries(entry.filter.macros ?? {}) as [MacroStage, readonly string[]][]) {
      const list = (macros[stage] ??= []);
      for (const name of names) if (!list.includes(name)) list.push(name);
    }
  }
  return { stages, edits, facets, macros };
}

/** The state of one filter within a message. */
type EntryStatus = 'active' | 'done' | 'bypassed' | 'trusted';

/** The end of one stage for the message. */
export type StageOutcome =
  | { readonly kind: 'continue' }
  /** The message is refused or dropped: the front-end answers with this now. */
  | { readonly kind: 'final'; readonly decision: Decision & { kind: 'reject' | 'tempfail' | 'discard' }; readonly by: string };

/** The end of a recipient's stage. */
export type RecipientOutcome = StageOutcome | { readonly kind: 'refused'; readonly decision: Decision & { kind: 'reject' | 'tempfail' }; readonly by: string };

/** What the front-end does at the end of the message. */
export interface MessageOutcome {
  readonly action: 'accept' | 'reject' | 'tempfail' | 'discard';
  /** The reply for reject and tempfail. */
  readonly reply?: SmtpReply;
  /** Set when the message is to be held. */
  readonly quarantine?: string;
  /** The filter whose decision ended the chain. */
  readonly by?: string;
  /** The edits to apply (accept only). */
  readonly draft: Draft;
}

const CONNECTION_ENDED = 'the connection ended';

/** A connection: the client, and the outcome of the connect hooks, computed once per AUTH state. */
export class ConnectionRun {
  /** @internal Ends the hooks of the connection's messages when it closes. */
  readonly scope = new HookScope();
  private controller: AbortController | undefined;
  /** Keyed by whether the message's sender authenticated. */
  private readonly connectRuns = new Map<boolean, Promise<ConnectResult>>();
  /** The SMTP client; the front-end completes it (HELO) as it learns more. */
  client: ClientInfo;

  /** @internal */
  constructor(
    readonly chain: Chain,
    client: ClientInfo,
    readonly raw: RawMtaData,
    /** Edits the front-end cannot make. */
    readonly unsupported: UnsupportedEdits,
  ) {
    this.client = client;
  }

  /** Fires when the connection ends. */
  get signal(): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController();
      if (this.closed) this.controller.abort(new Error(CONNECTION_ENDED));
    }
    return this.controller.signal;
  }

  private closed = false;

  /** Starts a message at MAIL FROM. */
  message(init: MessageInit): MessageRun {
    return new MessageRun(this, init);
  }

  /**
   * @internal The connect hooks' result, run with the first message's transaction, and again with
   * the first one after the client authenticated: what they decide may depend on AUTH (trusting
   * filters, `tx.auth`), and a client refused before AUTH retries after it.
   */
  connectResult(run: MessageRun): Promise<ConnectResult> {
    const authenticated = run.tx.auth !== undefined;
    let result = this.connectRuns.get(authenticated);
    if (result === undefined) {
      result = run.runConnectHooks();
      this.connectRuns.set(authenticated, result);
    }
    return result;
  }

  /** The connection ended: hooks still running see their signal fire. */
  close(): void {
    this.closed = true;
    this.scope.end(CONNECTION_ENDED);
    this.controller?.abort(new Error(CONNECTION_ENDED));
  }
}

/** The connect hooks' outcome, kept for every message of the connection. */
export interface ConnectResult {
  readonly statuses: ReadonlyMap<string, EntryStatus>;
  readonly final?: StageOutcome & { kind: 'final' };
  readonly quarantine?: { reason: string; by: string };
  readonly state: ReadonlyMap<string, Map<string, unknown>>;
}

/** What a front-end knows at MAIL FROM. */
export interface MessageInit {
  readonly sender: Sender;
  readonly auth?: AuthInfo;
  readonly tls?: TlsInfo;
  readonly queueId?: string;
  readonly raw?: RawMtaData;
}

class TransactionState implements Transaction {
  id: string;
  client: ClientInfo;
  auth?: AuthInfo;
  tls?: TlsInfo;
  queueId?: string;
  sender?: Sender;
  recipients: Recipient[] = [];
  raw: RawMtaData;

  constructor(connection: ConnectionRun, init: MessageInit) {
    this.client = connection.client;
    this.raw = init.raw ?? connection.raw;
    this.sender = init.sender;
    if (init.auth !== undefined) this.auth = init.auth;
    if (init.tls !== undefined) this.tls = init.tls;
    if (init.queueId !== undefined) this.queueId = init.queueId;
    this.id = init.queueId ?? `msg-${++messageCounter}`;
  }
}
let messageCounter = 0;

/** How one hook run ended, for the message's log line. */
interface HookTrace {
  readonly entry: string;
  readonly stage: HookStage;
  readonly outcome: string;
  readonly ms: number;
}

/** Connect hooks edit nothing (the envelope is not there yet). */
const NO_EDITS: ReadonlySet<EditKind> = new Set();

/** One message going through the chain. */
export class MessageRun implements HookContextSource {
  private readonly scope: HookScope;
  private readonly chain: Chain;
  private readonly statuses = new Map<string, EntryStatus>();
  private readonly state = new Map<string, Map<string, unknown>>();
  private readonly traces: HookTrace[] = [];
  private draft = new Draft();
  private final: (StageOutcome & { kind: 'final' }) | undefined;
  private quarantine: { reason: string; by: string } | undefined;
  private accepted: string | undefined;
  /** The transaction filters read; the front-end may update `queueId` and `raw` as they arrive. */
  readonly tx: TransactionState;

  /** @internal */
  constructor(
    private readonly connection: ConnectionRun,
    init: MessageInit,
  ) {
    this.chain = connection.chain;
    this.scope = new HookScope(connection.scope);
    this.tx = new TransactionState(connection, init);
    this.draft.sender = init.sender;
    for (const entry of this.chain.entries) {
      this.statuses.set(entry.name, entry.trusting && init.auth !== undefined ? 'trusted' : 'active');
    }
  }

  /** @internal */
  get limits(): EditLimits {
    return this.chain.limits;
  }

  /** @internal */
  get unsupported(): UnsupportedEdits {
    return this.connection.unsupported;
  }

  /** @internal */
  stateOf(name: string): Map<string, unknown> {
    let state = this.state.get(name);
    if (state === undefined) {
      state = new Map();
      this.state.set(name, state);
    }
    return state;
  }

  /** Updates what the MTA said since MAIL FROM (queue id, macros). */
  update(fields: { queueId?: string; raw?: RawMtaData }): void {
    if (fields.queueId !== undefined) {
      this.tx.queueId = fields.queueId;
      this.tx.id = fields.queueId;
    }
    if (fields.raw !== undefined) this.tx.raw = fields.raw;
  }

  /** The MTA dropped the message (ABORT, RSET) or the connection: running hooks see their signal fire. */
  abort(): void {
    this.scope.end('the message was aborted');
  }

  /**
   * Runs the connect hooks (once per connection and AUTH state) and the sender hooks. Call it at MAIL FROM.
   */
  async start(): Promise<StageOutcome> {
    if (this.chain.trusting && this.tx.auth !== undefined) {
      this.accepted = 'trusting';
      for (const name of this.statuses.keys()) this.statuses.set(name, 'trusted');
      return { kind: 'continue' };
    }
    if (this.chain.needs.stages.has('connect')) {
      const result = await this.connection.connectResult(this);
      for (const [name, status] of result.statuses) if (this.statuses.get(name) === 'active') this.statuses.set(name, status);
      for (const [name, values] of result.state) this.state.set(name, new Map(values));
      if (result.quarantine !== undefined) this.quarantine = result.quarantine;
      if (result.final !== undefined) return this.finish(result.final);
    }
    // Only recipient stages refuse single recipients, so this is a StageOutcome.
    return (await this.runStage('sender', (filter, ctx) => filter.sender!(this.tx, ctx))) as StageOutcome;
  }

  /** @internal */
  async runConnectHooks(): Promise<ConnectResult> {
    const outcome = await this.runStage('connect', (filter, ctx) => filter.connect!(this.tx, ctx), NO_EDITS);
    const result: ConnectResult = {
      statuses: new Map(this.statuses),
      state: new Map([...this.state].map(([name, values]) => [name, new Map(values)])),
      ...(outcome.kind === 'final' ? { final: outcome } : {}),
      ...(this.quarantine ? { quarantine: this.quarantine } : {}),
    };
    return result;
  }

  /**
   * Runs the recipient hooks for one RCPT TO; the recipient joins `tx.recipients` unless refused.
   * @param key the front-end's handle on this recipient, found again in the draft's recipients
   */
  async recipient(recipient: Recipient, key?: unknown): Promise<RecipientOutcome> {
    if (this.final) return this.final;
    const outcome = await this.runStage('recipient', (filter, ctx) => filter.recipient!(this.tx, recipient, ctx), undefined, true);
    if (outcome.kind === 'continue') {
      this.tx.recipients.push(recipient);
      this.draft.recipients.push({ ...recipient, received: true, ...(key === undefined ? {} : { key }) });
    }
    return outcome;
  }

  /** Runs the message hooks on the complete message and says what the front-end must do. */
  async message(content: MessageContent): Promise<MessageOutcome> {
    if (this.final === undefined) {
      this.draft.headers = HeaderList.received(content.headers);
      const outcome = await this.runStage('message', (filter, ctx) => filter.message!(this.tx, new MessageView(content, ctx.draft), ctx));
      if (outcome.kind === 'final') this.final = outcome;
    }
    return this.conclude();
  }

  /**
   * What each filter's hooks did so far, e.g. `spam.sender=continue/0ms spam.recipient×3=continue/1ms
   * spam.message=reject/2ms`: a hook that ended the same way for several recipients in a row is
   * named once, with its count and their total time.
   */
  get trace(): string {
    const parts: string[] = [];
    for (let at = 0; at < this.traces.length; ) {
      const { entry, stage, outcome } = this.traces[at]!;
      let ms = 0;
      let count = 0;
      for (; at < this.traces.length && this.traces[at]!.entry === entry && this.traces[at]!.stage === stage && this.traces[at]!.outcome === outcome; at++, count++) ms += this.traces[at]!.ms;
      parts.push(`${entry}.${stage}${count > 1 ? `×${count}` : ''}=${outcome}/${ms}ms`);
    }
    return parts.join(' ');
  }

  private conclude(): MessageOutcome {
    const final = this.final;
    const by = final?.by ?? this.quarantine?.by ?? this.accepted;
    const outcome: MessageOutcome = final
      ? { action: final.decision.kind, ...(final.decision.kind === 'discard' ? {} : { reply: final.decision.reply }), by, draft: this.draft }
      : { action: 'accept', ...(this.quarantine ? { quarantine: this.quarantine.reason } : {}), ...(by ? { by } : {}), draft: this.draft };
    if (!this.chain.shadow && !this.chain.logMessages) return outcome;
    const summary = `${outcome.action}${outcome.reply ? ' ' + describeDecision(final!.decision).slice(outcome.action.length + 1) : ''}${outcome.quarantine ? ` (quarantine: ${outcome.quarantine})` : ''}`;
    const fields = { event: 'message', id: this.tx.id, from: this.tx.sender?.address, rcpts: this.tx.recipients.length, outcome: summary, by, filters: this.trace };
    if (this.chain.shadow) {
      this.chain.log.info({ ...fields, shadow: true, edits: describeEdits(this.draft) }, `shadow: would ${summary}; let through unchanged`);
      return { action: 'accept', draft: new Draft([...this.draft.recipients.filter((r) => r.received)]) };
    }
    this.chain.log.info(fields, by ? `${summary} by ${by}` : summary);
    return outcome;
  }

  private finish(outcome: StageOutcome & { kind: 'final' }): StageOutcome {
    this.final = outcome;
    if (!this.chain.shadow) return outcome;
    this.chain.log.info({ event: 'shadow', id: this.tx.id, by: outcome.by, would: describeDecision(outcome.decision) }, `shadow: "${outcome.by}" would ${describeDecision(outcome.decision)}`);
    return { kind: 'continue' };
  }

  private failureDecision(policy: FailurePolicy): Decision {
    if (policy === 'continue') return { kind: 'continue' };
    return policy === 'reject' ? { kind: 'reject', reply: this.chain.replies.reject } : { kind: 'tempfail', reply: this.chain.replies.tempfail };
  }

  /**
   * Runs one stage's hooks in chain order.
   * @param allowed edit kinds permitted at this stage (default: what each filter declared)
   * @param perRecipient true for recipient hooks: reject/tempfail refuse the recipient only
   */
  private async runStage(
    stage: HookStage,
    call: (filter: AnyFilter, ctx: HookCallContext) => unknown,
    allowed?: ReadonlySet<EditKind>,
    perRecipient = false,
  ): Promise<RecipientOutcome> {
    for (const entry of this.chain.hooked[stage]) {
      if (this.final !== undefined) break;
      if (this.statuses.get(entry.name) !== 'active') continue;
      const draft = this.draft.fork();
      const kinds = stage === 'message' ? entry.edits : (allowed ?? entry.envelopeEdits);
      const started = Date.now();
      const answered: HookRun = await runHook(
        (running) => call(entry.filter, new HookCallContext(entry, draft, kinds, this, running)),
        entry.timeoutMs,
        this.scope,
        this.chain.deadlines,
      );
      // Quarantine is negotiated with milter MTAs only for filters that declare it.
      const run: HookRun =
        answered.kind === 'answer' && answered.decision.kind === 'quarantine' && !entry.edits.has('quarantine')
          ? { kind: 'error', error: new EditError(`filter "${entry.name}" did not declare "quarantine" in its edits, so it cannot quarantine`) }
          : answered;
      if (run.kind === 'aborted') return { kind: 'continue' };
      const ms = Date.now() - started;
      let decision: Decision;
      if (run.kind === 'answer') {
        decision = run.decision;
        this.traces.push({ entry: entry.name, stage, outcome: decision.kind, ms });
      } else {
        const policy = run.kind === 'timeout' ? entry.onTimeout : entry.onError;
        const what = run.kind === 'timeout' ? `did not answer within ${entry.timeoutMs} ms` : `failed: ${run.error.message}`;
        entry.log.error(
          { event: `filter-${run.kind}`, id: this.tx.id, stage, policy, ...(run.kind === 'error' ? { err: run.error.message } : {}) },
          `filter "${entry.name}" ${stage} hook ${what}; outcome: ${policy}`,
        );
        decision = this.failureDecision(policy);
        this.traces.push({ entry: entry.name, stage, outcome: `${run.kind}:${policy}`, ms });
        // A failed hook's edits are dropped whatever the policy.
        if (decision.kind === 'continue') continue;
      }
      if (entry.testing) {
        entry.log.info({ event: 'testing', id: this.tx.id, stage, would: describeDecision(decision), edits: describeEdits(draft) }, `testing: "${entry.name}" would ${describeDecision(decision)}`);
        continue;
      }
      if (run.kind === 'answer') this.draft = draft;
      const outcome = this.apply(entry, decision, perRecipient);
      if (outcome !== undefined) return outcome;
    }
    return { kind: 'continue' };
  }

  /** Applies one decision to the chain's state; returns the stage outcome when it ends the stage. */
  private apply(entry: ChainEntry, decision: Decision, perRecipient: boolean): RecipientOutcome | undefined {
    switch (decision.kind) {
      case 'continue':
        return undefined;
      case 'accept':
        this.statuses.set(entry.name, 'done');
        if (entry.for.length > 0) {
          for (const name of entry.for) this.statuses.set(name, 'bypassed');
          return undefined;
        }
        this.stopFrom(entry);
        this.accepted ??= entry.name;
        return { kind: 'continue' };
      case 'quarantine':
        this.quarantine = { reason: decision.reason, by: entry.name };
        for (const name of this.statuses.keys()) this.statuses.set(name, 'done');
        return { kind: 'continue' };
      case 'reject':
      case 'tempfail':
        if (perRecipient) {
          if (this.chain.shadow) {
            this.chain.log.info({ event: 'shadow', id: this.tx.id, by: entry.name, would: describeDecision(decision) }, `shadow: "${entry.name}" would refuse the recipient`);
            return undefined;
          }
          return { kind: 'refused', decision, by: entry.name };
        }
        return this.finish({ kind: 'final', decision, by: entry.name });
      case 'discard':
        return this.finish({ kind: 'final', decision, by: entry.name });
    }
  }

  private stopFrom(entry: ChainEntry): void {
    let after = false;
    for (const other of this.chain.entries) {
      if (other === entry) after = true;
      if (after && this.statuses.get(other.name) === 'active') this.statuses.set(other.name, 'done');
    }
  }
}

/** A short description of a draft's edits, for logs. */
function describeEdits(draft: Draft): string {
  const parts: string[] = [];
  const added = draft.recipients.filter((r) => !r.received).map((r) => r.address);
  if (added.length > 0) parts.push(`add rcpt ${added.join(',')}`);
  if (draft.senderChanged) parts.push(`sender <${draft.sender?.address ?? ''}>`);
  if (draft.body !== undefined) parts.push(`body ${draft.body.length} bytes`);
  if (draft.headers !== undefined) {
    const edited = draft.headers.fields.filter((f) => f.received === undefined || f.changed).length;
    if (edited > 0) parts.push(`${edited} header fields added or changed`);
  }
  return parts.join('; ');
}
