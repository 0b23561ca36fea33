/**
 * The ordered module chain run on every message: pythonfilter's semantics (`''` continue, `2xx`
 * stop, `0xx` stop and skip Courier's later filters, `4xx`/`5xx` reject, `MODULE for A B`
 * bypass) plus Courier::Filter's `trusting` and `testing`, and a failure policy per module so
 * that a module that throws, hangs or answers nonsense never silently lets mail through.
 *
 * @packageDocumentation
 */
import * as control from './helpers/control.js';
import { CourierConfig } from './helpers/config.js';
import { CourierMessage } from './helpers/message.js';
import type { CourierLogger } from './logging.js';
import type { CourierFilterModule, FilterContext, InitContext } from './module-api.js';
import { loadModule, type ModuleKind } from './module-loader.js';
import { RequestAnsweredError, runForRequest } from './helpers/request-scope.js';
import { parseModuleReply, replyEffect, type FilterReply } from './reply.js';
import type { FilterRequest } from './request.js';
import type { DaemonSettings, FailureOutcome, ModuleSettings } from './settings.js';

interface ChainEntry {
  readonly settings: ModuleSettings;
  readonly logger: CourierLogger;
  /** What the module's `initFilter` got, given again to its `closeFilter`. */
  readonly initContext: InitContext;
  readonly module?: CourierFilterModule;
  /** The module bounds its own steps (a filter of the filter API): only the message deadline applies. */
  readonly ownDeadlines?: boolean;
  readonly loadError?: Error;
  /** Why the module's signal fires, made once: an error per message would capture a stack every time. */
  readonly reasons: AbortReasons;
}

interface AbortReasons {
  readonly answered: RequestAnsweredError;
  readonly missedDeadline: RequestAnsweredError;
}

function abortReasons(name: string): AbortReasons {
  return {
    answered: new RequestAnsweredError(`the module "${name}" has answered`),
    missedDeadline: new RequestAnsweredError(`the module "${name}" missed its deadline`),
  };
}

/** How one module's run ended. */
type ModuleRun =
  | { kind: 'answer'; reply: FilterReply | undefined }
  | { kind: 'error'; error: Error }
  | { kind: 'timeout' };

/** Courier's logger cuts long syslog lines; log lines name at most this many recipients. */
const LOGGED_RECIPIENTS = 5;

function recipientSummary(addresses: readonly string[]): string {
  const shown = addresses.slice(0, LOGGED_RECIPIENTS).join(', ');
  return addresses.length > LOGGED_RECIPIENTS ? `${shown} (+${addresses.length - LOGGED_RECIPIENTS} more)` : shown;
}

function parseFixedReply(text: string): FilterReply {
  return parseModuleReply(text)!;
}

/**
 * Runs a module's doFilter with a deadline; never throws. The module runs in a request scope
 * whose signal is aborted as soon as its run ends (answer, failure or deadline), so helpers
 * refuse to act for it afterwards and the message it opened is released. A module that blocks
 * the thread past its deadline cannot win the race by answering as soon as it unblocks: an answer
 * that arrives after the deadline counts as a timeout.
 */
async function runWithDeadline(
  entry: ChainEntry & { module: CourierFilterModule },
  request: FilterRequest,
  message: Pick<FilterContext, 'courier' | 'readControlFiles' | 'note'>,
  deadlineMs: number,
): Promise<ModuleRun> {
  if (deadlineMs <= 0) return { kind: 'timeout' };
  const deadlineAt = Date.now() + deadlineMs;
  const controller = new AbortController();
  const signal = controller.signal;
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<ModuleRun>((resolve) => {
    timer = setTimeout(() => resolve({ kind: 'timeout' }), deadlineMs);
  });
  // Built in one literal: no intermediate object and no spread per message.
  const moduleContext: FilterContext = {
    name: entry.settings.name,
    options: entry.settings.options,
    logger: entry.logger,
    courier: message.courier,
    control,
    readControlFiles: message.readControlFiles,
    note: message.note,
    signal,
    openMessage: () => CourierMessage.open(request.dataPath, { signal }),
  };
  // An answer that is not a valid reply counts as a module error, like a throw.
  const runModule = (): Promise<ModuleRun> =>
    Promise.resolve()
      .then(() => entry.module.doFilter(request.dataPath, request.controlPaths, moduleContext))
      .then((answer): ModuleRun => ({ kind: 'answer', reply: parseModuleReply(answer) }))
      .catch((error: unknown): ModuleRun => ({ kind: 'error', error: error instanceof Error ? error : new Error(String(error)) }));
  // A module of the filter API hands its signal to every helper it calls, so it needs no request
  // scope; without one, Node never turns on the promise hooks the scope costs on every promise.
  const answered = entry.ownDeadlines ? runModule() : runForRequest(signal, runModule);
  try {
    const outcome = await Promise.race([answered, timedOut]);
    return Date.now() > deadlineAt ? { kind: 'timeout' } : outcome;
  } finally {
    clearTimeout(timer);
    controller.abort(Date.now() > deadlineAt ? entry.reasons.missedDeadline : entry.reasons.answered);
  }
}

/** Resolves with `work`'s value, or rejects once `ms` have passed. */
async function withinDeadline<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), Math.max(0, ms));
  });
  try {
    return await Promise.race([work, expired]);
  } finally {
    clearTimeout(timer);
  }
}

/** A loaded, ready-to-run module chain. */
export class FilterChain {
  /** The configured replies, parsed once. */
  private readonly replies: { readonly accept: FilterReply; readonly reject: FilterReply; readonly tempfail: FilterReply };

  private constructor(
    private readonly settings: DaemonSettings,
    private readonly entries: readonly ChainEntry[],
    private readonly courier: CourierConfig,
    private readonly logger: CourierLogger,
  ) {
    const { accept, reject, tempfail } = settings.replies;
    this.replies = { accept: parseFixedReply(accept), reject: parseFixedReply(reject), tempfail: parseFixedReply(tempfail) };
  }

  /**
   * Imports and initialises every module. A module that fails to load or initialise does not
   * stop the others: it is logged, and on every message its `onError` outcome applies.
   *
   * @param kinds the kinds of module run besides `doFilter` modules (the command line passes the
   *   filter API's, which also resolves the built-in names)
   */
  static async load(settings: DaemonSettings, courier: CourierConfig, logger: CourierLogger, kinds: readonly ModuleKind[] = []): Promise<FilterChain> {
    const entries: ChainEntry[] = [];
    for (const moduleSettings of settings.modules) {
      const moduleLogger = logger.child({ module: moduleSettings.name });
      const initContext: InitContext = { name: moduleSettings.name, options: moduleSettings.options, logger: moduleLogger, courier };
      const reasons = abortReasons(moduleSettings.name);
      try {
        const { module, ownDeadlines } = await loadModule(moduleSettings, settings, kinds);
        await module.initFilter?.(initContext);
        moduleLogger.info({ event: 'module-ready' }, `Initialized the "${moduleSettings.name}" filter`);
        entries.push({ settings: moduleSettings, logger: moduleLogger, initContext, module, ownDeadlines, reasons });
      } catch (error) {
        const loadError = error instanceof Error ? error : new Error(String(error));
        moduleLogger.error(
          { event: 'module-failed', err: loadError, onError: moduleSettings.onError },
          `module "${moduleSettings.name}" failed to start; every message gets its onError outcome (${moduleSettings.onError})`,
        );
        entries.push({ settings: moduleSettings, logger: moduleLogger, initContext, loadError, reasons });
      }
    }
    return new FilterChain(settings, entries, courier, logger);
  }

  /** Names of the modules in order. */
  get moduleNames(): string[] {
    return this.entries.map((e) => e.settings.name);
  }

  private failureReply(outcome: FailureOutcome): FilterReply | undefined {
    if (outcome === 'continue') return undefined;
    return outcome === 'reject' ? this.replies.reject : this.replies.tempfail;
  }

  /** Messages running on this chain now. */
  private running = 0;
  /** Called when the last message in flight ends, while {@link close} waits for it. */
  private idle: (() => void) | undefined;
  private closing: Promise<void> | undefined;

  /** Runs the chain on one message and returns the reply for Courier. Never throws. */
  async filter(request: FilterRequest): Promise<FilterReply> {
    this.running++;
    try {
      return await this.run(request);
    } finally {
      if (--this.running === 0) this.idle?.();
    }
  }

  /**
   * Closes the chain once it is no longer used (replaced by a reload, or the daemon stopping):
   * waits for the messages still running on it, at most `drainMs` (default: one message
   * deadline), then calls every module's `closeFilter` in order, each bounded by its own deadline.
   * Errors are logged. A daemon that stops has drained its messages already and passes 0.
   */
  close(drainMs = this.settings.messageTimeout * 1000): Promise<void> {
    this.closing ??= this.closeModules(drainMs);
    return this.closing;
  }

  private async closeModules(drainMs: number): Promise<void> {
    if (this.running > 0 && drainMs > 0) {
      await new Promise<void>((resolve) => {
        this.idle = resolve;
        setTimeout(resolve, drainMs).unref();
      });
    }
    for (const entry of this.entries) {
      const closeFilter = entry.module?.closeFilter;
      if (closeFilter === undefined) continue;
      try {
        await withinDeadline(Promise.resolve().then(() => closeFilter.call(entry.module, entry.initContext)), entry.settings.timeout * 1000, `closing the module "${entry.settings.name}"`);
      } catch (error) {
        entry.logger.error({ event: 'module-close-failed', err: error }, `module "${entry.settings.name}" failed to close: ${(error as Error).message}`);
      }
    }
  }

  private async run(request: FilterRequest): Promise<FilterReply> {
    const started = Date.now();
    const deadline = started + this.settings.messageTimeout * 1000;
    let files: readonly control.ControlFile[];
    try {
      // Small files are read at once; larger ones inside the message deadline (and bounded in bytes).
      files = control.readSmallControlFiles(request.controlPaths) ?? (await withinDeadline(control.readControlFiles(request.controlPaths), deadline - Date.now(), 'reading the control files'));
    } catch (error) {
      this.logger.error({ event: 'message', err: error, request }, `cannot read control files: ${(error as Error).message}`);
      return this.replies.tempfail;
    }
    const data = control.controlDataOf(files);
    // The files just read serve the modules too, while nothing can have changed them.
    let shared: { files: readonly control.ControlFile[]; writes: number } | undefined = { files, writes: control.controlFileWrites() };
    const readControlFiles = (): Promise<readonly control.ControlFile[]> =>
      shared !== undefined && shared.writes === control.controlFileWrites() ? Promise.resolve(shared.files) : control.readControlFiles(request.controlPaths);
    const about = { messageId: data.messageId, from: data.sender, rcpts: data.recipients.length, recipients: recipientSummary(data.recipients.map((r) => r.address)) };
    const authenticated = data.authenticatedUser !== undefined;
    const accept = this.replies.accept;
    if (this.settings.trusting && authenticated) {
      this.logger.info({ event: 'message', ...about, reply: this.settings.replies.accept, trusted: data.authenticatedUser }, 'accepted: authenticated sender (trusting)');
      return accept;
    }

    // Compact per-module trace, e.g. "attachments=continue/4ms greylist=bypassed".
    const traces: string[] = [];
    // What the modules noted for this message's line (a filter-API module: what its filters did).
    const notes: Record<string, string> = {};
    const note = (fields: Readonly<Record<string, string>>): void => {
      for (const [key, value] of Object.entries(fields)) notes[key] = notes[key] === undefined ? value : `${notes[key]} ${value}`;
    };
    const bypass = new Set<string>();
    let decision: { reply: FilterReply; by: string } | undefined;
    for (const entry of this.entries) {
      const name = entry.settings.name;
      if (bypass.has(name)) {
        traces.push(`${name}=bypassed`);
        continue;
      }
      if (entry.settings.trusting && authenticated) {
        traces.push(`${name}=trusted`);
        continue;
      }
      const moduleStarted = Date.now();
      const run: ModuleRun = entry.module
        ? await runWithDeadline(
            entry as ChainEntry & { module: CourierFilterModule },
            request,
            { courier: this.courier, readControlFiles, note },
            // The engine bounds each hook of a filter-API filter; the message deadline bounds the whole.
            entry.ownDeadlines ? deadline - moduleStarted : Math.min(entry.settings.timeout * 1000, deadline - moduleStarted),
          )
        : { kind: 'error', error: entry.loadError ?? new Error('module not loaded') };
      const ms = Date.now() - moduleStarted;
      // A module of the filter API writes control files only through the helpers, which count their writes.
      if (!entry.ownDeadlines) shared = undefined;

      let answer: FilterReply | undefined;
      if (run.kind === 'answer') {
        answer = run.reply;
        traces.push(`${name}=${answer ? answer.code : 'continue'}/${ms}ms`);
      } else {
        const outcome = run.kind === 'timeout' ? entry.settings.onTimeout : entry.settings.onError;
        const what = run.kind === 'timeout' ? `did not answer within its deadline` : `failed: ${run.error.message}`;
        entry.logger.error({ event: `module-${run.kind}`, ...about, err: run.kind === 'error' ? run.error : undefined, outcome }, `module "${name}" ${what}; outcome: ${outcome}`);
        answer = this.failureReply(outcome);
        traces.push(`${name}=${run.kind}:${outcome}/${ms}ms`);
      }
      if (!answer) continue;
      if (entry.settings.testing || this.settings.testing) {
        entry.logger.info({ event: 'testing', ...about, wouldReply: `${answer.code} ${answer.lines.join(' / ')}` }, `testing: "${name}" would have answered ${answer.code}`);
        continue;
      }
      if (replyEffect(answer.code) === 'accept' && entry.settings.for.length > 0) {
        for (const skipped of entry.settings.for) bypass.add(skipped);
        continue;
      }
      decision = { reply: answer, by: name };
      break;
    }

    const final = decision?.reply ?? accept;
    const effect = replyEffect(final.code);
    const summary = `${final.code} ${final.lines.join(' / ')}`;
    // A note cannot replace the chain's own fields.
    const fields = { ...notes, event: 'message', ...about, reply: summary.slice(0, 200), decidedBy: decision?.by, modules: traces.join(' '), ms: Date.now() - started };
    if (effect === 'reject' || effect === 'tempfail') {
      this.logger.info(fields, `${effect === 'reject' ? 'rejected' : 'temporarily rejected'} by ${decision?.by}`);
    } else {
      this.logger.info(fields, decision ? `accepted by ${decision.by}` : 'accepted');
    }
    return final;
  }
}
