/**
 * noduplicates: when alias expansion leaves the same canonical recipient more than once, keeps
 * the first and marks the others delivered, so the mailbox gets one copy. Every removal is
 * logged. Never rejects. The control files are read and parsed once and each is appended to
 * (and synced) once, however many duplicates there are.
 *
 * @packageDocumentation
 */
import type { ControlRecipient } from '../helpers/control.js';
import type { FilterContext } from '../module-api.js';

/** Canonical form for comparison: the domain is case-insensitive, the local part is not. */
function comparable(address: string): string {
  const at = address.lastIndexOf('@');
  return at === -1 ? address : address.slice(0, at) + address.slice(at).toLowerCase();
}

export async function doFilter(_bodyPath: string, controlPaths: readonly string[], ctx: FilterContext): Promise<string> {
  const files = await ctx.control.readControlFiles(controlPaths);
  const seen = new Set<string>();
  const duplicates: ControlRecipient[] = [];
  for (const recipient of files.flatMap((file) => file.recipients)) {
    if (recipient.delivered) continue;
    const key = comparable(recipient.address);
    if (seen.has(key)) duplicates.push(recipient);
    else seen.add(key);
  }
  if (duplicates.length > 0) {
    await ctx.control.removeRecipients(files, duplicates, { reason: 'duplicate recipient removed by noduplicates', logger: ctx.logger });
  }
  return '';
}
