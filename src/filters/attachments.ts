/**
 * attachments: rejects messages with an attachment whose file name matches `blockedPattern`
 * (executables by default), also inside zip archives (bounded depth, entries and sizes; an
 * archive too large to inspect is a filter failure, so the failure policy decides).
 *
 * The message is never parsed whole: a streaming scan of its MIME structure (boundaries and part
 * headers) gives the file names, and only bodies that start like a zip archive are decoded, for
 * the archive listing. Every step is bounded; a message past a bound is not called clean either.
 *
 * @packageDocumentation
 */
import { ArchiveLimitError, DEFAULT_ZIP_LIMITS, findZipEntry, loadZipReader, looksLikeZip, ZIP_SIGNATURES } from '../courier/filters/zip-entries.js';
import { DEFAULT_MIME_SCAN_LIMITS, loadMimeScanner, scanMimeStructure } from '../courier/helpers/mime-structure.js';
import { defineFilter, reject, type HeaderField } from '../filter-api/index.js';

export const DEFAULT_BLOCKED_PATTERN =
  '\\.(ade|adp|app|bat|chm|cmd|com|cpl|exe|hta|inf|ins|isp|jar|js|jse|lnk|msc|msi|msp|pif|ps1|reg|scr|sct|shs|sys|vb|vbe|vbs|wsc|wsf|wsh)$';

interface Options {
  blockedPattern: string;
  scanArchives: boolean;
  maxArchiveDepth: number;
  maxArchiveEntries: number;
  maxNestedArchiveBytes: number;
  maxArchiveBytes: number;
  maxMessageBytes: number;
  maxParts: number;
  maxScanSeconds: number;
}

function baseName(path: string): string {
  return path.split(/[\\/]/).pop() ?? path;
}

const count = { type: 'integer', minimum: 0 } as const;

/** Transfer encodings under which the body is its own decoded bytes. */
const IDENTITY_ENCODINGS: ReadonlySet<string> = new Set(['7bit', '8bit', 'binary']);

/**
 * True when the scan could find nothing, without running it: the message is one part of text
 * without a file name (no multipart or attached message, no Content-Disposition, no `name`
 * parameter), under an identity transfer encoding, with a body that does not start like a zip
 * archive, and within the scan's bounds. Most mail is such a message.
 */
function plainSinglePart(headers: Iterable<HeaderField>, body: Buffer, options: Options): boolean {
  if (options.maxParts < 1 || (options.scanArchives && looksLikeZip(body))) return false;
  let headerBytes = 2;
  for (const { name, value } of headers) {
    const field = name.trim().toLowerCase();
    if (field === 'content-disposition') return false;
    if (field === 'content-type' && (!/^\s*text\/[a-z0-9!#$&^_.+-]+\s*(;|$)/i.test(value) || /name/i.test(value))) return false;
    if (field === 'content-transfer-encoding' && !IDENTITY_ENCODINGS.has(value.trim().toLowerCase())) return false;
    // As message.raw() writes the field: "name: value" with CRLF line ends.
    headerBytes += Buffer.byteLength(name) + Buffer.byteLength(value) + 4 + (value.match(/\n/g)?.length ?? 0);
  }
  return headerBytes <= DEFAULT_MIME_SCAN_LIMITS.maxHeaderBytes && headerBytes + body.length <= options.maxMessageBytes;
}

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
      maxArchiveBytes: { ...count, default: DEFAULT_MIME_SCAN_LIMITS.maxCollectedBytes },
      maxMessageBytes: { ...count, default: DEFAULT_MIME_SCAN_LIMITS.maxBytes },
      maxParts: { ...count, default: DEFAULT_MIME_SCAN_LIMITS.maxParts },
      maxScanSeconds: { type: 'number', exclusiveMinimum: 0, default: DEFAULT_MIME_SCAN_LIMITS.maxMs / 1000 },
    },
  },
  // The scanning libraries are loaded when the chain starts, not with the bundled filters: a chain
  // without this filter never carries them, and one with it fails at start-up if they are missing.
  async init({ options }) {
    await Promise.all([loadMimeScanner(), options.scanArchives ? loadZipReader() : undefined]);
    return new RegExp(options.blockedPattern, 'i');
  },
  async message(_tx, message, ctx) {
    const blocked = ctx.resources;
    const { options } = ctx;
    // A message that plainly holds nothing to find is not scanned. Otherwise Courier's data file
    // is scanned rather than a copy of the message; elsewhere (or once an earlier filter replaced
    // the body) the message in memory is.
    if (plainSinglePart(message.headers, await message.bodyBuffer(), options)) return undefined;
    const onFile = !message.bodyReplaced && message.messagePath !== undefined;
    const source = onFile ? message.messagePath! : await message.raw();
    const structure = await scanMimeStructure(source, {
      limits: { maxBytes: options.maxMessageBytes, maxParts: options.maxParts, maxCollectedBytes: options.maxArchiveBytes, maxMs: options.maxScanSeconds * 1000 },
      collectPrefixes: options.scanArchives ? ZIP_SIGNATURES : [],
      signal: ctx.signal,
    });
    for (const part of structure.parts) {
      if (part.filename && blocked.test(baseName(part.filename))) {
        return reject(`The attachment "${part.filename}" is not accepted here.`, { code: '554', xcode: '5.7.1' });
      }
    }
    const limits = { maxDepth: options.maxArchiveDepth, maxEntries: options.maxArchiveEntries, maxNestedBytes: options.maxNestedArchiveBytes };
    for (const { part, bytes } of structure.collected) {
      if (!looksLikeZip(bytes)) continue;
      const name = part.filename ?? '';
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
