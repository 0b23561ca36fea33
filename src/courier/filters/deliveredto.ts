/**
 * deliveredto: rejects (`501`) a message that already carries a `Delivered-To:` header naming
 * one of this server's local or hosted domains: it has been delivered here before, so this is
 * a mail loop.
 *
 * @packageDocumentation
 */
import type { FilterContext } from '../module-api.js';

/** The domain of the address in a header value (`Name <a@b>` or `a@b`), lower-cased. */
export function domainOf(value: string): string | undefined {
  const address = /<([^>]*)>/.exec(value)?.[1] ?? value.trim();
  const at = address.lastIndexOf('@');
  const domain = at === -1 ? '' : address.slice(at + 1).trim().toLowerCase();
  return domain === '' ? undefined : domain;
}

export async function doFilter(_bodyPath: string, _controlPaths: readonly string[], ctx: FilterContext): Promise<string> {
  const message = await ctx.openMessage();
  for (const value of message.headerValues('Delivered-To')) {
    const domain = domainOf(value);
    if (domain && ((await ctx.courier.isLocal(domain)) || (await ctx.courier.isHostedDomain(domain)))) {
      return '501 Mail loop - already have my Delivered-To: header.';
    }
  }
  return '';
}
