/**
 * whitelist_auth: accepts (`200`) messages whose sender authenticated with SMTP AUTH (the
 * control file's `i` record), so that later modules in the chain are skipped for them.
 * Typical use: `whitelist_auth for greylist ratelimit` or simply first in the chain.
 *
 * @packageDocumentation
 */
import type { FilterContext } from '../module-api.js';

export async function doFilter(_bodyPath: string, controlPaths: readonly string[], ctx: FilterContext): Promise<string> {
  const user = await ctx.control.getAuthUser(controlPaths);
  return user !== undefined ? `200 Ok, authenticated as ${user}` : '';
}
