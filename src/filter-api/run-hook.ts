/**
 * Running one hook of one filter: its deadline, its AbortSignal (deadline, message abort,
 * disconnect) and the capture of whatever it does wrong, so that the engine always gets an
 * answer and never waits for a hook past its deadline.
 *
 * @packageDocumentation
 */
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

/**
 * Calls `hook` with a signal and waits for its decision, its failure, its deadline or the abort
 * of `outer`, whichever comes first. Never throws.
 */
export async function runHook(hook: (signal: AbortSignal) => unknown, timeoutMs: number, outer: AbortSignal): Promise<HookRun> {
  if (outer.aborted) return { kind: 'aborted' };
  const deadline = new AbortController();
  const signal = AbortSignal.any([deadline.signal, outer]);
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  const stopped = new Promise<HookRun>((resolve) => {
    onAbort = () => resolve(deadline.signal.aborted ? { kind: 'timeout' } : { kind: 'aborted' });
    signal.addEventListener('abort', onAbort, { once: true });
    timer = setTimeout(() => deadline.abort(new HookDeadlineError(`deadline of ${timeoutMs} ms passed`)), timeoutMs);
  });
  const answered = Promise.resolve()
    .then(() => hook(signal))
    // toDecision throws for an answer that is not a decision: that is the filter's error too.
    .then((result): HookRun => ({ kind: 'answer', decision: toDecision(result) }))
    .catch((error: unknown): HookRun => ({ kind: 'error', error: error instanceof Error ? error : new Error(String(error)) }));
  try {
    return await Promise.race([answered, stopped]);
  } finally {
    clearTimeout(timer);
    signal.removeEventListener('abort', onAbort!);
  }
}
