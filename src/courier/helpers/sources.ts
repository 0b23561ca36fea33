/**
 * Courier's text configuration sources. Many settings are a file *or* a directory of files that
 * Courier's `make*` tools concatenate (`smtpaccess/`, `aliases/`, `hosteddomains/`, …). The GDBM
 * `.dat` files built from them have no mainstream Node reader, so milterkit reads the sources.
 *
 * @packageDocumentation
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';

/** A source bigger than this is refused (a safety bound; real ones are kilobytes). */
export const MAX_SOURCE_BYTES = 16 * 1024 * 1024;

/**
 * Reads a file, or every regular file of a directory (sorted by name, skipping dot files and
 * editor backups ending in `~`) joined with newlines. Undefined when the path does not exist.
 */
export async function readSourceText(path: string): Promise<string | undefined> {
  const info = await stat(path).catch(() => undefined);
  if (!info) return undefined;
  if (!info.isDirectory()) return readBounded(path);
  const names = (await readdir(path)).filter((n) => !n.startsWith('.') && !n.endsWith('~')).sort();
  const parts: string[] = [];
  for (const name of names) {
    const child = join(path, name);
    if ((await stat(child).catch(() => undefined))?.isFile()) parts.push(await readBounded(child));
  }
  return parts.join('\n');
}

async function readBounded(path: string): Promise<string> {
  const info = await stat(path);
  if (info.size > MAX_SOURCE_BYTES) throw new Error(`${path} is too large (${info.size} bytes)`);
  return readFile(path, 'utf8');
}

/** A fingerprint that changes when a file or any file of a directory changes. */
async function fingerprint(path: string): Promise<string> {
  const info = await stat(path).catch(() => undefined);
  if (!info) return 'missing';
  if (!info.isDirectory()) return `${info.ino}:${info.size}:${info.mtimeMs}`;
  const names = (await readdir(path)).sort();
  const parts = await Promise.all(
    names.map(async (n) => {
      const child = await stat(join(path, n)).catch(() => undefined);
      return child ? `${n}:${child.ino}:${child.size}:${child.mtimeMs}` : n;
    }),
  );
  return `${info.mtimeMs}|${parts.join('|')}`;
}

/**
 * A parsed view of one source that is re-read only when the file (or directory) changes, so a
 * long-running daemon follows edits without a restart.
 */
export class CachedSource<T> {
  private cached: { fingerprint: string; value: T } | undefined;

  constructor(
    private readonly path: string,
    private readonly parse: (text: string | undefined) => T,
  ) {}

  /** The parsed value, re-parsed when the source changed since the last call. */
  async get(): Promise<T> {
    const current = await fingerprint(this.path);
    if (this.cached?.fingerprint !== current) {
      this.cached = { fingerprint: current, value: this.parse(await readSourceText(this.path)) };
    }
    return this.cached.value;
  }
}

/** Lines without comments (`#` at the start) and blank lines, trimmed. */
export function meaningfulLines(text: string | undefined): string[] {
  if (text === undefined) return [];
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
}
