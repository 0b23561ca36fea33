/**
 * Which message a piece of module code is working for. The chain runs each module inside a scope
 * carrying that module's `AbortSignal`; the signal fires when the module's deadline passes or its
 * answer has been taken. Helpers check it, so a module that carries on after that point (code
 * that ignored the signal, a forgotten timer) can no longer write control or data files for a
 * message Courier has already been answered about, and stops at its next helper call.
 *
 * The scope follows the module's asynchronous continuations (AsyncLocalStorage), so it holds for
 * helpers imported from `milterkit/courier` as well as for those on `ctx`.
 *
 * @packageDocumentation
 */
import { AsyncLocalStorage } from 'node:async_hooks';

/** Thrown by a helper called for a message whose module was already answered for or timed out. */
export class RequestAnsweredError extends Error {
  override name = 'RequestAnsweredError';
}

const scope = new AsyncLocalStorage<AbortSignal>();

/** Runs `work` (and everything it starts) on behalf of the message that `signal` belongs to. */
export function runForRequest<T>(signal: AbortSignal, work: () => T): T {
  return scope.run(signal, work);
}

/** The signal of the message the calling code works for, if it runs inside the chain. */
export function currentRequestSignal(): AbortSignal | undefined {
  return scope.getStore();
}

/**
 * Throws {@link RequestAnsweredError} when the calling code works for a message that was already
 * answered for (or whose deadline passed); `action` names what was refused, for the log.
 */
export function assertRequestOpen(action: string, signal: AbortSignal | undefined = scope.getStore()): void {
  if (!signal?.aborted) return;
  const reason = signal.reason instanceof Error ? signal.reason.message : String(signal.reason);
  throw new RequestAnsweredError(`${action} refused: ${reason}`);
}
