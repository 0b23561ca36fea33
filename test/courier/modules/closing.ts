/** A `doFilter` module that appends "init TAG" and "close TAG" to the file its options name. */
import { appendFileSync } from 'node:fs';
import type { InitContext } from '../../../src/courier/module-api.js';

const record = (ctx: InitContext, what: string): void => appendFileSync(String(ctx.options.log), `${what} ${String(ctx.options.tag)}\n`);

export function initFilter(ctx: InitContext): void {
  record(ctx, 'init');
}

export function doFilter(): string {
  return '';
}

export function closeFilter(ctx: InitContext): void {
  record(ctx, 'close');
}
