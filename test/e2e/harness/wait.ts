/** Bounded waiting: every wait of the suite has a limit and says what it was waiting for. */
import { setTimeout as sleep } from 'node:timers/promises';

/** Raised when a bounded wait runs out. */
export class WaitTimeoutError extends Error {
  override readonly name = 'WaitTimeoutError';
}

/**
 * Calls `probe` until it returns something other than `undefined`/`false`, at most for `limitMs`.
 * @throws WaitTimeoutError naming `what` (plus the last probe's failure, if any)
 */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined | false> | T | undefined | false, limitMs: number, intervalMs = 50): Promise<T> {
  const deadline = Date.now() + limitMs;
  let lastError: unknown;
  for (;;) {
    try {
      const result = await probe();
      if (result !== undefined && result !== false) return result;
      lastError = undefined;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() >= deadline) {
      const cause = lastError instanceof Error ? `: ${lastError.message}` : '';
      throw new WaitTimeoutError(`gave up after ${limitMs} ms waiting for ${what}${cause}`);
    }
    await sleep(intervalMs);
  }
}

/**
 * Resolves with `promise`, or rejects with WaitTimeoutError once `limitMs` have passed.
 */
export async function withinLimit<T>(what: string, promise: Promise<T>, limitMs: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new WaitTimeoutError(`gave up after ${limitMs} ms waiting for ${what}`)), limitMs);
  });
  try {
    return await Promise.race([promise, limit]);
  } finally {
    clearTimeout(timer);
  }
}
