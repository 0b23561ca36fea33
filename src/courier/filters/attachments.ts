/**
 * attachments: rejects (`554`) a message with an attachment whose file name matches a blocked
 * pattern, including names inside zip archives (nested ones too, within bounds).
 *
 * Options: `blockedPattern` (a regular expression, case-insensitive, matched against the base
 * name; default: executable and script extensions), `scanArchives` (default true),
 * `maxArchiveDepth`, `maxArchiveEntries`, `maxNestedArchiveBytes`.
 *
 * @packageDocumentation
 */
import type { FilterContext } from '../module-api.js';
import { ArchiveLimitError, DEFAULT_ZIP_LIMITS, findZipEntry, looksLikeZip, type ZipLimits } from './zip-entries.js';

/** Executables and scripts that mail clients run on a double click. */
export const DEFAULT_BLOCKED_PATTERN =
  '\\.(ade|adp|app|bat|chm|cmd|com|cpl|exe|hta|inf|ins|isp|jar|js|jse|lnk|msc|msi|msp|pif|ps1|reg|scr|sct|shs|sys|vb|vbe|vbs|wsc|wsf|wsh)$';

function numberOption(ctx: FilterContext, key: string, fallback: number): number {
  const value = ctx.options[key];
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) throw new Error(`option ${key} must be a non-negative number`);
  return value;
}

function baseName(path: string): string {
  return path.split(/[\\/]/).pop() ?? path;
}

export async function doFilter(_bodyPath: string, _controlPaths: readonly string[], ctx: FilterContext): Promise<string> {
  const pattern = ctx.options.blockedPattern ?? DEFAULT_BLOCKED_PATTERN;
  if (typeof pattern !== 'string') throw new Error('option blockedPattern must be a string');
  const blocked = new RegExp(pattern, 'i');
  const scanArchives = ctx.options.scanArchives !== false;
  const limits: ZipLimits = {
    maxDepth: numberOption(ctx, 'maxArchiveDepth', DEFAULT_ZIP_LIMITS.maxDepth),
    maxEntries: numberOption(ctx, 'maxArchiveEntries', DEFAULT_ZIP_LIMITS.maxEntries),
    maxNestedBytes: numberOption(ctx, 'maxNestedArchiveBytes', DEFAULT_ZIP_LIMITS.maxNestedBytes),
  };
  const email = await (await ctx.openMessage()).parse({ attachmentEncoding: 'arraybuffer' });
  for (const attachment of email.attachments) {
    const name = attachment.filename ?? '';
    if (name && blocked.test(baseName(name))) {
      return `554 5.7.1 The attachment "${name}" is not accepted here.`;
    }
    const content = attachment.content;
    const bytes = typeof content === 'string' ? Buffer.from(content) : Buffer.from(content instanceof ArrayBuffer ? new Uint8Array(content) : content);
    if (!scanArchives || !looksLikeZip(bytes)) continue;
    try {
      const inside = await findZipEntry(bytes, (entryName) => blocked.test(baseName(entryName)), limits);
      if (inside) return `554 5.7.1 The attachment "${name || 'archive'}" contains "${inside}", which is not accepted here.`;
    } catch (error) {
      // Too big to inspect is not clean: let the module's failure policy decide.
      if (error instanceof ArchiveLimitError) throw error;
      // An archive that cannot be read cannot be opened by the recipient either; note it and go on.
      ctx.logger.warn({ event: 'archive-unreadable', attachment: name, err: (error as Error).message }, `cannot read archive "${name}": ${(error as Error).message}`);
    }
  }
  return '';
}
