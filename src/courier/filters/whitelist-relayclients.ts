/**
 * whitelist_relayclients: accepts (`200`) messages from clients that Courier's smtpaccess
 * database allows to relay (`RELAYCLIENT`), looked up by the sender's IP address (IPv4, IPv6,
 * IPv4-mapped IPv6) with the most specific prefix winning.
 *
 * @packageDocumentation
 */
import type { FilterContext } from '../module-api.js';

export async function doFilter(_bodyPath: string, controlPaths: readonly string[], ctx: FilterContext): Promise<string> {
  const ip = await ctx.control.getSendersIp(controlPaths);
  if (ip === undefined) return '';
  return (await ctx.courier.isRelayed(ip)) ? `200 Ok, relay client ${ip}` : '';
}
