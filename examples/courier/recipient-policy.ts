/**
 * Example Courier filter module: keeps an archive copy of every message and drops recipients
 * that must no longer receive mail (a departed colleague still listed in an alias), without
 * rejecting the message for everybody else.
 *
 * Configuration (in the daemon's YAML file):
 *
 * ```yaml
 * modules:
 *   - module: /path/to/recipient-policy.js
 *     options:
 *       archive: archive@example.com
 *       drop: [former.colleague@example.com]
 * ```
 */
import type { FilterContext } from '../../src/courier/index.js';

function addresses(value: unknown, option: string): string[] {
  if (value === undefined) return [];
  if (typeof value === 'string') return [value];
  if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value;
  throw new Error(`option ${option} must be an address or a list of addresses`);
}

export async function doFilter(_bodyPath: string, controlPaths: readonly string[], ctx: FilterContext): Promise<string> {
  const drop = new Set(addresses(ctx.options.drop, 'drop').map((a) => a.toLowerCase()));
  const [archive] = addresses(ctx.options.archive, 'archive');
  const recipients = await ctx.control.getRecipients(controlPaths);
  for (const recipient of recipients) {
    if (drop.has(recipient.toLowerCase())) {
      // removeRecipient marks it delivered and logs the removal; Courier would not log it.
      await ctx.control.removeRecipient(controlPaths, recipient, { reason: `${ctx.name}: recipient no longer receives mail`, logger: ctx.logger });
    }
  }
  if (archive && !recipients.some((r) => r.toLowerCase() === archive.toLowerCase())) {
    await ctx.control.addRecipient(controlPaths, archive);
  }
  return '';
}
