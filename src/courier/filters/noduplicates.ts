/**
 * noduplicates: when alias expansion leaves the same canonical recipient more than once, keeps
 * the first and marks the others delivered, so the mailbox gets one copy. Every removal is
 * logged. Never rejects.
 *
 * @packageDocumentation
 */
import type { FilterContext } from '../module-api.js';

/** Canonical form for comparison: the domain is case-insensitive, the local part is not. */
function comparable(address: string): string {
  const at = address.lastIndexOf('@');
  return at === -1 ? address : address.slice(0, at) + address.slice(at).toLowerCase();
}

export async function doFilter(_bodyPath: string, controlPaths: readonly string[], ctx: FilterContext): Promise<string> {
  const seen = new Set<string>();
  const undelivered = (await ctx.control.getAllRecipients(controlPaths)).filter((r) => !r.delivered);
  for (const recipient of undelivered) {
    const key = comparable(recipient.address);
    if (!seen.has(key)) {
      seen.add(key);
      continue;
    }
    await ctx.control.removeRecipient(controlPaths, recipient, { reason: 'duplicate recipient removed by noduplicates', logger: ctx.logger });
  }
  return '';
}
