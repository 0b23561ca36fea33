/**
 * attachments: rejects messages with an attachment whose file name matches `blockedPattern`
 * (executables by default), also inside zip archives (bounded depth, entries and sizes; an
 * archive too large to inspect is a filter failure, so the failure policy decides).
 *
 * @packageDocumentation
 */
import { ArchiveLimitError, DEFAULT_ZIP_LIMITS, findZipEntry, looksLikeZip } from '../courier/filters/zip-entries.js';
import { defineFilter, reject } from '../filter-api/index.js';

export const DEFAULT_BLOCKED_PATTERN =
  '\\.(ade|adp|app|bat|chm|cmd|com|cpl|exe|hta|inf|ins|isp|jar|js|jse|lnk|msc|msi|msp|pif|ps1|reg|scr|sct|shs|sys|vb|vbe|vbs|wsc|wsf|wsh)$';

interface Options {
  blockedPattern: string;
  scanArchives: boolean;
  maxArchiveDepth: number;
  maxArchiveEntries: number;
  maxNestedArchiveBytes: number;
}

function baseName(path: string): string {
  return path.split(/[\\/]/).pop() ?? path;
}

const count = { type: 'integer', minimum: 0 } as const;

export default defineFilter<Options, RegExp>({
  name: 'attachments',
  description: 'reject attachments with blocked file names, also inside zip archives',
  options: {
    type: 'object',
    properties: {
      blockedPattern: { type: 'string', default: DEFAULT_BLOCKED_PATTERN },
      scanArchives: { type: 'boolean', default: true },
      maxArchiveDepth: { ...count, default: DEFAULT_ZIP_LIMITS.maxDepth },
      maxArchiveEntries: { ...count, default: DEFAULT_ZIP_LIMITS.maxEntries },
      maxNestedArchiveBytes: { ...count, default: DEFAULT_ZIP_LIMITS.maxNestedBytes },
    },
  },
  init: ({ options }) => new RegExp(options.blockedPattern, 'i'),
  async message(_tx, message, ctx) {
    const blocked = ctx.resources;
    const limits = { maxDepth: ctx.options.maxArchiveDepth, maxEntries: ctx.options.maxArchiveEntries, maxNestedBytes: ctx.options.maxNestedArchiveBytes };
    for (const attachment of (await message.parsed()).attachments) {
      const name = attachment.filename ?? '';
      if (name && blocked.test(baseName(name))) return reject(`The attachment "${name}" is not accepted here.`, { code: '554', xcode: '5.7.1' });
      const content = attachment.content;
      const bytes = typeof content === 'string' ? Buffer.from(content) : Buffer.from(content instanceof ArrayBuffer ? new Uint8Array(content) : content);
      if (!ctx.options.scanArchives || !looksLikeZip(bytes)) continue;
      try {
        const inside = await findZipEntry(bytes, (entry) => blocked.test(baseName(entry)), limits);
        if (inside) return reject(`The attachment "${name || 'archive'}" contains "${inside}", which is not accepted here.`, { code: '554', xcode: '5.7.1' });
      } catch (error) {
        // Too big to inspect is not clean: the failure policy decides.
        if (error instanceof ArchiveLimitError) throw error;
        // An archive that cannot be read cannot be opened by the recipient either.
        ctx.log.warn({ event: 'archive-unreadable', attachment: name, err: (error as Error).message }, `cannot read archive "${name}": ${(error as Error).message}`);
      }
    }
  },
});
