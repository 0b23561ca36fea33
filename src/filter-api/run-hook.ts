/**
 * Running one hook of one filter: its deadline, its AbortSignal (deadline, message abort,
 * disconnect) and the capture of whatever it does wrong, so that the engine always gets an
 * answer and never waits for a hook past its deadline.
 *
 * Hooks run by the thousand per second, so nothing here is per hook that could be shared: the
 * deadlines of a chain's running hooks share one timer ({@link HookDeadlines}), the message and
 * the connection stop their running hooks directly ({@link HookScope}) rather than through
 * chained signals, and a hook's AbortSignal is made only when the hook reads it.
 *
 * @packageDocumentation
 */
import { performance } from 'node:perf_hooks';
import { toDecision, type Decision } from './decisions.js';

/** How a hook run ended. */
export type HookRun =
  | { readonly kind: 'answer'; readonly decision: Decision }
  | { readonly kind: 'error'; readonly error: Error }
  | { readonly kind: 'timeout' }
  /** The message was aborted (ABORT, disconnect) while the hook ran; its answer no longer matters. */
  | { readonly kind: 'aborted' };

/** The reason a hook's signal fires at its deadline. */
export class HookDeadlineError extends Error {
  override readonly name = 'HookDeadlineError';
}

const TIMED_OUT: HookRun = { kind: 'timeout' };
const ABORTED: HookRun = { kind: 'aborted' };

/** One hook call in flight: what stops it, and its signal once the hook asked for one. */
export class RunningHook {
  private controller: AbortController | undefined;
  private settle: ((run: HookRun) => void) | undefined;
  private stoppedBy: { readonly run: HookRun; readonly reason: Error } | undefined;

  /** @internal */
  constructor(
    /** `performance.now()` at which the hook's time is up. */
    readonly deadlineAt: number,
    private readonly timeoutMs: number,
  ) {}

  /** Fires at the deadline, on the message's abort and on disconnect; made on first use. */
  get signal(): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController();
      if (this.stoppedBy !== undefined) this.controller.abort(this.stoppedBy.reason);
    }
    return this.controller.signal;
  }

  /** The deadline passed. */
  expire(): void {
    this.stop(TIMED_OUT, new HookDeadlineError(`deadline of ${this.timeoutMs} ms passed`));
  }

  /** The message or the connection ended. */
  abort(reason: Error): void {
    this.stop(ABORTED, reason);
  }

  private stop(run: HookRun, reason: Error): void {
    if (this.stoppedBy !== undefined) return;
    this.stoppedBy = { run, reason };
    this.controller?.abort(reason);
    this.finish(run);
  }

  /** @internal Delivers the run's outcome once; later ones are ignored. */
  finish(run: HookRun): void {
    const settle = this.settle;
    this.settle = undefined;
    settle?.(run);
  }

  /** @internal The hook's outcome, when it is asynchronous. */
  outcome(answer: PromiseLike<unknown>): Promise<HookRun> {
    return new Promise<HookRun>((resolve) => {
      this.settle = resolve;
      answer.then(
        (result) => this.finish(answerOf(result)),
        (error: unknown) => this.finish(errorOf(error)),
      );
    });
  }
}

/**
 * The deadlines of a chain's running hooks, behind one timer armed for the earliest of them: a
 * hook's start and end cost a Set entry, not a timer. The timer keeps the process alive only while
 * some hook runs.
 */
export class HookDeadlines {
  private readonly running = new Set<RunningHook>();
  private timer: NodeJS.Timeout | undefined;
  /** When the timer fires (Infinity when it is not armed). */
  private armedFor = Infinity;

  /** Starts watching a hook that may run for `timeoutMs`. */
  start(timeoutMs: number): RunningHook {
    const hook = new RunningHook(performance.now() + timeoutMs, timeoutMs);
    this.running.add(hook);
    if (hook.deadlineAt < this.armedFor) this.arm(hook.deadlineAt);
    else if (this.running.size === 1) this.timer?.ref();
    return hook;
  }

  /** The hook ended. The timer stays armed (it is cheaper to let it fire once than to move it). */
  end(hook: RunningHook): void {
    this.running.delete(hook);
    if (this.running.size === 0) this.timer?.unref();
  }

  private arm(at: number): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.armedFor = at;
    this.timer = setTimeout(() => this.fire(), Math.max(1, Math.ceil(at - performance.now())));
  }

  private fire(): void {
    this.timer = undefined;
    this.armedFor = Infinity;
    const now = performance.now();
    let next = Infinity;
    for (const hook of this.running) {
      if (hook.deadlineAt <= now) {
        this.running.delete(hook);
        hook.expire();
      } else if (hook.deadlineAt < next) next = hook.deadlineAt;
    }
    if (next !== Infinity) this.arm(next);
  }
}

/**
 * What a hook runs within (a message, a connection): ending it stops the hooks running in it and
 * in the scopes below it, and no hook starts in it afterwards.
 */
export class HookScope {
  private readonly running = new Set<RunningHook>();
  private endedBecause: string | undefined;

  constructor(private readonly parent?: HookScope) {}

  /** True once this scope or one above it ended. */
  get ended(): boolean {
    return this.endedBecause !== undefined || this.parent?.ended === true;
  }

  /**
   * Ends the scope: the running hooks see their signal fire, with an Error saying `because` (made
   * only when some hook runs: most messages end with none).
   */
  end(because: string): void {
    if (this.endedBecause !== undefined) return;
    this.endedBecause = because;
    if (this.running.size === 0) return;
    const reason = new Error(because);
    for (const hook of [...this.running]) hook.abort(reason);
    this.running.clear();
  }

  /** @internal */
  enter(hook: RunningHook): void {
    this.running.add(hook);
    this.parent?.enter(hook);
  }

  /** @internal */
  leave(hook: RunningHook): void {
    this.running.delete(hook);
    this.parent?.leave(hook);
  }
}

function answerOf(result: unknown): HookRun {
  try {
    return { kind: 'answer', decision: toDecision(result) };
  } catch (error) {
    // toDecision throws for an answer that is not a decision: that is the filter's error too.
    return errorOf(error);
  }
}

function errorOf(error: unknown): HookRun {
  return { kind: 'error', error: error instanceof Error ? error : new Error(String(error)) };
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (typeof value === 'object' || typeof value === 'function') && value !== null && typeof (value as { then?: unknown }).then === 'function';
}

/**
 * Calls `hook` and waits for its decision, its failure, its deadline or the end of `scope`,
 * whichever comes first. Never throws.
 */
export async function runHook(hook: (running: RunningHook) => unknown, timeoutMs: number, scope: HookScope, deadlines: HookDeadlines): Promise<HookRun> {
  if (scope.ended) return ABORTED;
  const running = deadlines.start(timeoutMs);
  scope.enter(running);
  try {
    let result: unknown;
    try {
      result = hook(running);
    } catch (error) {
      return errorOf(error);
    }
    return isThenable(result) ? await running.outcome(result) : answerOf(result);
  } finally {
    deadlines.end(running);
    scope.leave(running);
  }
}
