/**
 * add_header: adds a header field to every message through the in-place rewrite, leaving every
 * other byte of the message as it was.
 *
 * Options: `name` (default `X-Filtered-By`), `value` (default `milterkit on <me>`; `{me}` and
 * `{messageId}` are replaced), `position` (`bottom`, the default, or `top`).
 *
 * @packageDocumentation
 */
import type { FilterContext } from '../module-api.js';

function option(ctx: FilterContext, key: string, fallback: string): string {
  const value = ctx.options[key];
  if (value === undefined) return fallback;
  if (typeof value !== 'string') throw new Error(`option ${key} must be a string`);
  return value;
}

export async function doFilter(_bodyPath: string, controlPaths: readonly string[], ctx: FilterContext): Promise<string> {
  const name = option(ctx, 'name', 'X-Filtered-By');
  const position = option(ctx, 'position', 'bottom');
  const me = await ctx.courier.me();
  const messageId = (await ctx.control.getLines(controlPaths, 'M', 1))[0] ?? '';
  const value = option(ctx, 'value', 'milterkit on {me}').replaceAll('{me}', me).replaceAll('{messageId}', messageId);
  const message = await ctx.openMessage();
  if (position === 'top') message.insertHeader(0, name, value);
  else message.addHeader(name, value);
  await message.save();
  return '';
}
