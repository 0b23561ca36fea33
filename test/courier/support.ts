/**
 * Shared helpers for the Courier tests: fixture paths, scratch directories and a tiny zip
 * writer (stored entries) for attachment tests.
 */
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { after, before } from 'node:test';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { crc32 } from 'node:zlib';

/** The repository root, from dist/test/courier/ (compiled) back to the source tree. */
export const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
export const fixtures = join(repoRoot, 'test/courier/fixtures');
export const spoolFixtures = join(fixtures, 'spool');
export const etcFixture = join(fixtures, 'etc');

/** A fresh directory under the system temp dir; remove it with the returned function. */
export async function scratch(prefix = 'mk-courier-'): Promise<{ dir: string; remove: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** Copies spool fixtures into `dir` (tests that edit files work on copies). */
export async function copySpool(dir: string, ...names: string[]): Promise<string[]> {
  return Promise.all(
    names.map(async (name) => {
      const target = join(dir, name);
      await cp(join(spoolFixtures, name), target);
      return target;
    }),
  );
}

/** Builds a zip archive with uncompressed ("stored") entries. */
export function makeZip(entries: Array<{ name: string; data: Buffer | string }>): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const entry of entries) {
    const name = Buffer.from(entry.name, 'utf8');
    const data = typeof entry.data === 'string' ? Buffer.from(entry.data) : entry.data;
    const crc = crc32(data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(0x0800, 6); // UTF-8 names
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(data.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(name.length, 26);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(20, 4);
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(0x0800, 8);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(data.length, 20);
    central.writeUInt32LE(data.length, 24);
    central.writeUInt16LE(name.length, 28);
    central.writeUInt32LE(offset, 42);
    locals.push(local, name, data);
    centrals.push(central, name);
    offset += local.length + name.length + data.length;
  }
  const centralSize = centrals.reduce((n, b) => n + b.length, 0);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(centralSize, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, ...centrals, end]);
}

/** A MIME message (LF line ends) with one text part and the given base64 attachments. */
export function mimeWithAttachments(attachments: Array<{ filename: string; type: string; data: Buffer; encodedName?: string }>): Buffer {
  const boundary = 'mk-boundary-42';
  const parts = attachments.map(
    (a) =>
      `--${boundary}\nContent-Type: ${a.type}; name="${a.encodedName ?? a.filename}"\nContent-Disposition: attachment; filename="${a.encodedName ?? a.filename}"\nContent-Transfer-Encoding: base64\n\n${a.data.toString('base64').replace(/.{76}/g, '$&\n')}\n`,
  );
  return Buffer.from(
    `Received: from client.example ([::ffff:192.0.2.10])\n  by mail.test.example with ESMTP; Sun, 22 Nov 2026 04:44:00 +0000\nFrom: bob@sender.example\nTo: alice@mail.test.example\nSubject: Files\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="${boundary}"\n\n--${boundary}\nContent-Type: text/plain\n\nSee attached.\n${parts.join('')}--${boundary}--\n`,
  );
}

/** A logger that keeps records in memory (pino-compatible surface used by the Courier code). */
export function memoryLogger(): { logger: import('../../src/courier/logging.js').CourierLogger; records: Array<Record<string, unknown> & { level: string; msg?: string }> } {
  const records: Array<Record<string, unknown> & { level: string; msg?: string }> = [];
  const make = (bindings: Record<string, unknown>): import('../../src/courier/logging.js').CourierLogger => {
    const at = (level: string) => (fields: unknown, msg?: string) => {
      records.push({ ...bindings, ...(typeof fields === 'object' && fields !== null ? fields : { msg: fields }), level, ...(msg ? { msg } : {}) });
    };
    return { info: at('info'), warn: at('warn'), error: at('error'), debug: at('debug'), child: (more: Record<string, unknown>) => make({ ...bindings, ...more }) } as never;
  };
  return { logger: make({}), records };
}

/** A per-message context as the chain builds it, for calling a module's doFilter directly. */
export async function filterContext(
  options: Record<string, unknown>,
  dataPath: string,
  sysconfdir: string = etcFixture,
): Promise<{ ctx: import('../../src/courier/module-api.js').FilterContext; records: ReturnType<typeof memoryLogger>['records'] }> {
  const control = await import('../../src/courier/helpers/control.js');
  const { CourierConfig } = await import('../../src/courier/helpers/config.js');
  const { CourierMessage } = await import('../../src/courier/helpers/message.js');
  const { logger, records } = memoryLogger();
  const ctx = {
    name: 'under-test',
    options,
    logger,
    courier: new CourierConfig({ sysconfdir }),
    control,
    openMessage: () => CourierMessage.open(dataPath),
    readControlFiles: () => control.readControlFiles([]),
    signal: new AbortController().signal,
    note: () => undefined,
  };
  return { ctx, records };
}

/** A scratch directory for one `describe` block: created before its tests, removed after. */
export function scratchPerSuite(): { readonly dir: string } {
  const state = { dir: '' };
  let remove: (() => Promise<void>) | undefined;
  before(async () => {
    const made = await scratch();
    state.dir = made.dir;
    remove = made.remove;
  });
  after(async () => remove?.());
  return state;
}
