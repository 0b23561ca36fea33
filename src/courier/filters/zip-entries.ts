/**
 * Lists file names inside zip archives, nested archives included, with bounds against
 * decompression bombs (depth, entry count, bytes inflated for nested archives).
 *
 * @packageDocumentation
 */
import type Yauzl from 'yauzl';
import type { Entry, ZipFile } from 'yauzl';

/** Bounds on archive inspection. */
export interface ZipLimits {
  /** Archives inside archives are opened down to this depth (1 = only the attachment itself). */
  maxDepth: number;
  /** Entries listed in total before giving up. */
  maxEntries: number;
  /** A nested archive larger than this (uncompressed) is listed by name only, not opened. */
  maxNestedBytes: number;
}

export const DEFAULT_ZIP_LIMITS: ZipLimits = { maxDepth: 3, maxEntries: 10_000, maxNestedBytes: 16 * 1024 * 1024 };

/** Thrown when an archive exceeds a bound; the caller should not treat it as clean. */
export class ArchiveLimitError extends Error {
  override name = 'ArchiveLimitError';
}

/** How a zip archive starts: a local file header, or the end record of an empty archive. */
export const ZIP_SIGNATURES: readonly Buffer[] = [Buffer.from([0x50, 0x4b, 0x03, 0x04]), Buffer.from([0x50, 0x4b, 0x05, 0x06])];

/** True for bytes that start like a zip archive (local file header or empty archive). */
export function looksLikeZip(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && (bytes[2] === 0x03 || bytes[2] === 0x05);
}

function readEntry(zip: ZipFile, entry: Entry): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    zip.openReadStream(entry, (error, stream) => {
      if (error) return reject(error);
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('error', reject);
      stream.on('end', () => resolve(Buffer.concat(chunks)));
    });
  });
}

/** yauzl, once loaded (see {@link loadZipReader}). */
let yauzl: typeof Yauzl | undefined;

/**
 * Loads what {@link findZipEntry} needs, yauzl, unless it is loaded. Not loaded with this module:
 * some 6 MiB a process that never opens a zip archive should not carry. A filter that looks into
 * archives calls this when it starts, so a broken installation shows then; a search loads it
 * itself otherwise.
 */
export async function loadZipReader(): Promise<void> {
  yauzl ??= (await import('yauzl')).default;
}

/**
 * Calls `visit` with the path of every entry (`outer.zip/inner.zip/file.exe` style for nested
 * ones, joined with `/`). Stops early when `visit` returns true, and returns that entry's path.
 *
 * @throws when the archive is not a readable zip file
 */
export async function findZipEntry(
  archive: Buffer,
  visit: (fileName: string) => boolean,
  limits: ZipLimits = DEFAULT_ZIP_LIMITS,
  depth = 1,
  budget = { entries: limits.maxEntries },
): Promise<string | undefined> {
  if (yauzl === undefined) await loadZipReader();
  const zip = await yauzl!.fromBufferPromise(archive, { lazyEntries: true, validateEntrySizes: true, strictFileNames: false });
  try {
    for (;;) {
      const entry = await new Promise<Entry | undefined>((resolve, reject) => {
        const cleanup = () => {
          zip.off('entry', onEntry);
          zip.off('end', onEnd);
          zip.off('error', onError);
        };
        const onEntry = (e: Entry) => (cleanup(), resolve(e));
        const onEnd = () => (cleanup(), resolve(undefined));
        const onError = (error: Error) => (cleanup(), reject(error));
        zip.on('entry', onEntry);
        zip.on('end', onEnd);
        zip.on('error', onError);
        zip.readEntry();
      });
      if (!entry) return undefined;
      if (--budget.entries < 0) throw new ArchiveLimitError(`archive has more than ${limits.maxEntries} entries`);
      if (visit(entry.fileName)) return entry.fileName;
      const nestedCandidate = /\.zip$/i.test(entry.fileName) && !entry.isEncrypted();
      if (nestedCandidate && depth < limits.maxDepth && entry.uncompressedSize <= limits.maxNestedBytes) {
        const inner = await readEntry(zip, entry);
        const found = looksLikeZip(inner) ? await findZipEntry(inner, visit, limits, depth + 1, budget) : undefined;
        if (found) return `${entry.fileName}/${found}`;
      }
    }
  } finally {
    zip.close();
  }
}
