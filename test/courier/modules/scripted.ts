/**
 * A test filter module whose behaviour comes from its options, and which records every call, so
 * chain tests can see which modules ran and in what order.
 */
import type { FilterContext, InitContext } from '../../../src/courier/module-api.js';

/** Names of the modules called, in order (shared by every chain entry using this file). */
export const calls: string[] = [];

export function initFilter(ctx: InitContext): void {
  if (ctx.options.failInit) throw new Error('init failed on purpose');
}

export async function doFilter(_body: string, _control: readonly string[], ctx: FilterContext): Promise<unknown> {
  calls.push(ctx.name);
  ctx.logger.info({ event: 'scripted-called' }, 'scripted module called');
  switch (ctx.options.behaviour) {
    case 'throw':
      throw new Error('module failed on purpose');
    case 'hang':
      // Never answers by itself; resolves only when the chain aborts it, so nothing leaks.
      return new Promise((resolve) => ctx.signal.addEventListener('abort', () => resolve('250 too late')));
    case 'stray-throw':
      // An error thrown outside the module's promise, where no caller can catch it.
      setTimeout(() => {
        throw new Error('stray error outside the module promise');
      }, 0);
      return '';
    case 'number':
      return 42;
    default:
      return ctx.options.reply ?? '';
  }
}
