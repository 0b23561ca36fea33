/**
 * A test filter module whose behaviour comes from its options, and which records every call, so
 * chain tests can see which modules ran and in what order.
 */
import { appendFile } from 'node:fs/promises';
import type { FilterContext, InitContext } from '../../../src/courier/module-api.js';

/** Names of the modules called, in order (shared by every chain entry using this file). */
export const calls: string[] = [];

/** Messages kept by the `hold-message` behaviour, as a leaky module would keep them. */
export const held: unknown[] = [];

export function initFilter(ctx: InitContext): void {
  if (ctx.options.failInit) throw new Error('init failed on purpose');
}

export async function doFilter(_body: string, controlPaths: readonly string[], ctx: FilterContext): Promise<unknown> {
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
    case 'block': {
      // Holds the thread, as CPU-bound code does; no timer can fire meanwhile.
      const until = Date.now() + Number(ctx.options.ms);
      while (Date.now() < until);
      return ctx.options.reply ?? '';
    }
    case 'late-write':
      // Ignores its deadline and edits the control file once the chain has given up on it.
      await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve));
      try {
        await ctx.control.addRecipient(controlPaths, 'late@mail.test.example');
        ctx.logger.info({ event: 'late-write-done' }, 'late write done');
      } catch (error) {
        ctx.logger.info({ event: 'late-write-refused', err: (error as Error).message }, 'late write refused');
      }
      return '';
    case 'append-recipient':
      // Edits the control file itself, not through the helpers, as a module may.
      await appendFile(controlPaths[controlPaths.length - 1]!, `r${String(ctx.options.address)}\nR\nN\n`);
      return '';
    case 'hold-message': {
      // Opens the message and then never answers nor lets go of it (ignoring its signal).
      const message = await ctx.openMessage();
      held.push(message);
      return new Promise(() => undefined);
    }
    default:
      return ctx.options.reply ?? '';
  }
}
