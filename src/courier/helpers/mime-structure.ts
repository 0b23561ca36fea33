/**
 * A bounded, streaming scan of a message's MIME structure: boundaries and part headers, never the
 * decoded bodies. It reads the data file in slices (so other messages are served between them),
 * looks at body bytes only where a line starts with `-` (a boundary candidate), and keeps nothing
 * but the header block being read, a boundary candidate line and, on request, the bodies that
 * start like an archive. Every dimension is bounded: bytes, parts, nesting, header size, time.
 *
 * @packageDocumentation
 */
import type Libmime from 'libmime';
import { openRegularFile, readSmallFileSync } from './files.js';
import { assertRequestOpen } from './request-scope.js';

/** One part as its headers describe it. */
export interface MimePart {
  /** `type/subtype`, lower case; `text/plain` when not given. */
  readonly contentType: string;
  /** File name from `Content-Disposition: …; filename=` or `Content-Type: …; name=`, decoded (RFC 2231, RFC 2047). */
  readonly filename?: string;
  /** `Content-Transfer-Encoding`, lower case; `7bit` when not given. */
  readonly encoding: string;
  /** Nesting: 0 for the message itself, 1 for the parts of its multipart body, … */
  readonly depth: number;
}

/** A part whose decoded body started with one of the requested prefixes, with that body. */
export interface CollectedBody {
  readonly part: MimePart;
  readonly bytes: Buffer;
}

/** Bounds of a scan; going past one throws {@link MimeLimitError}. */
export interface MimeScanLimits {
  /** Message bytes read. */
  readonly maxBytes: number;
  /** Parts (header blocks) seen. */
  readonly maxParts: number;
  /** Nesting of multiparts and attached messages. */
  readonly maxDepth: number;
  /** Bytes of one header block. */
  readonly maxHeaderBytes: number;
  /** Encoded bytes of all collected bodies together. */
  readonly maxCollectedBytes: number;
  /** Wall-clock time of the whole scan, in milliseconds. */
  readonly maxMs: number;
}

export const DEFAULT_MIME_SCAN_LIMITS: MimeScanLimits = {
  maxBytes: 64 * 1024 * 1024,
  maxParts: 1000,
  maxDepth: 20,
  maxHeaderBytes: 256 * 1024,
  maxCollectedBytes: 32 * 1024 * 1024,
  maxMs: 10_000,
};

/** What a scan found. */
export interface MimeStructure {
  /** Every part, the message itself first, in order. */
  readonly parts: readonly MimePart[];
  /** Leaf bodies that started with one of `collectPrefixes`. */
  readonly collected: readonly CollectedBody[];
}

/** Thrown when a message exceeds a bound of the scan: it was not fully inspected. */
export class MimeLimitError extends Error {
  override name = 'MimeLimitError';
}

const LF = 0x0a;
const DASH = 0x2d;
const NEWLINE_DASH = Buffer.from('\n-');
/** A boundary is at most 70 characters (RFC 2046); a longer candidate line is body text. */
const MAX_BOUNDARY_LINE = 2 + 70 + 2 + 64;
const READ_SLICE_BYTES = 256 * 1024;
/** Encoded characters looked at to recognise a collected prefix (8 base64 characters = 6 bytes). */
const SNIFF_CHARACTERS = 8;

interface Delimiter {
  readonly open: string;
  readonly close: string;
  /** Depth of the multipart part this boundary belongs to. */
  readonly depth: number;
}

/** Collection state of the current leaf body: undecided, collecting, or not wanted. */
type Collecting = { state: 'sniff' | 'all'; part: MimePart; chunks: Buffer[]; bytes: number } | undefined;

/** libmime, once loaded (see {@link loadMimeScanner}). */
let libmime: typeof Libmime | undefined;

/**
 * Loads what {@link scanMimeStructure} needs, libmime, unless it is loaded. Not loaded with this
 * module: with its character-set tables it adds about 10 MiB to a process, which a milter or
 * Courier filter that checks no attachment should not carry. A filter that scans calls this when
 * it starts, so a broken installation shows then rather than at the first message; a scan loads
 * it itself otherwise.
 */
export async function loadMimeScanner(): Promise<void> {
  libmime ??= (await import('libmime')).default;
}

function headerParams(value: string | undefined): { value: string; params: Record<string, string> } {
  if (value === undefined) return { value: '', params: {} };
  const parsed = libmime!.parseHeaderValue(value);
  return { value: parsed.value.trim().toLowerCase(), params: parsed.params };
}

function decodedName(raw: string | undefined): string | undefined {
  if (raw === undefined || raw === '') return undefined;
  try {
    return libmime!.decodeWords(raw);
  } catch {
    return raw;
  }
}

/** Parses one header block (LF or CRLF lines, folded lines included) into the fields that matter. */
function partOf(block: Buffer, depth: number): { part: MimePart; boundary?: string } {
  const fields = new Map<string, string>();
  const unfolded = block.toString('latin1').replace(/\r?\n(?=[ \t])/g, '');
  for (const line of unfolded.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    // The first occurrence wins, as in most mail clients.
    if (!fields.has(name)) fields.set(name, Buffer.from(line.slice(colon + 1).trim(), 'latin1').toString('utf8'));
  }
  const type = headerParams(fields.get('content-type'));
  const disposition = headerParams(fields.get('content-disposition'));
  const contentType = /^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+$/.test(type.value) ? type.value : 'text/plain';
  const filename = decodedName(disposition.params.filename ?? type.params.name);
  const encoding = (fields.get('content-transfer-encoding') ?? '7bit').trim().toLowerCase();
  const part: MimePart = { contentType, encoding, depth, ...(filename !== undefined ? { filename } : {}) };
  const boundary = contentType.startsWith('multipart/') ? type.params.boundary : undefined;
  return boundary ? { part, boundary } : { part };
}

function decodeBody(encoding: string, chunks: readonly Buffer[]): Buffer {
  const raw = Buffer.concat(chunks);
  // Base64 decoding skips line ends and other non-alphabet bytes.
  return encoding === 'base64' ? Buffer.from(raw.toString('latin1'), 'base64') : raw;
}

/** The scan's state machine, fed slice by slice. */
class StructureScanner {
  readonly parts: MimePart[] = [];
  readonly collected: CollectedBody[] = [];
  private readonly delimiters: Delimiter[] = [];
  private mode: 'headers' | 'body' = 'headers';
  /** Depth of the header block being read. */
  private headerDepth = 0;
  private header: Buffer[] = [];
  private headerBytes = 0;
  /** A body line that starts with `-`, being assembled (at most MAX_BOUNDARY_LINE bytes). */
  private candidate: Buffer[] | undefined;
  private candidateBytes = 0;
  private atLineStart = true;
  private collecting: Collecting;
  private collectedBytes = 0;

  constructor(
    private readonly limits: MimeScanLimits,
    private readonly prefixes: readonly Buffer[],
  ) {}

  feed(slice: Buffer): void {
    let position = 0;
    while (position < slice.length) {
      position = this.mode === 'headers' ? this.feedHeader(slice, position) : this.feedBody(slice, position);
    }
  }

  end(): void {
    this.finishBody();
  }

  private feedHeader(slice: Buffer, position: number): number {
    const newline = slice.indexOf(LF, position);
    const end = newline === -1 ? slice.length : newline + 1;
    const piece = slice.subarray(position, end);
    this.headerBytes += piece.length;
    if (this.headerBytes > this.limits.maxHeaderBytes) throw new MimeLimitError(`a header block is larger than ${this.limits.maxHeaderBytes} bytes`);
    const lineStart = this.atLineStart;
    this.atLineStart = newline !== -1;
    const blank = lineStart && newline !== -1 && (piece.length === 1 || (piece.length === 2 && piece[0] === 0x0d));
    if (blank) this.endOfHeader();
    else this.header.push(Buffer.from(piece));
    return end;
  }

  private endOfHeader(): void {
    if (this.parts.length >= this.limits.maxParts) throw new MimeLimitError(`more than ${this.limits.maxParts} MIME parts`);
    const { part, boundary } = partOf(Buffer.concat(this.header), this.headerDepth);
    this.header = [];
    this.headerBytes = 0;
    this.parts.push(part);
    this.mode = 'body';
    const nests = boundary !== undefined || (part.contentType === 'message/rfc822' && !['base64', 'quoted-printable'].includes(part.encoding));
    if (nests && this.headerDepth >= this.limits.maxDepth) throw new MimeLimitError(`MIME parts nested deeper than ${this.limits.maxDepth}`);
    if (boundary !== undefined) {
      this.delimiters.push({ open: `--${boundary}`, close: `--${boundary}--`, depth: this.headerDepth });
    } else if (nests) {
      // An attached message: its own header block follows at once.
      this.mode = 'headers';
      this.headerDepth++;
    } else if (this.prefixes.length > 0) {
      this.collecting = { state: 'sniff', part, chunks: [], bytes: 0 };
    }
  }

  private feedBody(slice: Buffer, position: number): number {
    if (this.candidate === undefined) {
      // Skip to the next line that starts with "-": only such a line can be a boundary, and only
      // inside a multipart.
      const atDash = this.delimiters.length > 0 && this.atLineStart && slice[position] === DASH;
      const found = atDash || this.delimiters.length === 0 ? -1 : slice.indexOf(NEWLINE_DASH, position);
      if (!atDash && found === -1) {
        this.bodyBytes(slice.subarray(position));
        this.atLineStart = slice[slice.length - 1] === LF;
        return slice.length;
      }
      const dash = atDash ? position : found + 1;
      this.bodyBytes(slice.subarray(position, dash));
      this.candidate = [];
      this.candidateBytes = 0;
      position = dash;
    }
    const newline = slice.indexOf(LF, position);
    const end = newline === -1 ? slice.length : newline + 1;
    const piece = slice.subarray(position, end);
    this.candidate.push(Buffer.from(piece));
    this.candidateBytes += piece.length;
    this.atLineStart = newline !== -1;
    if (this.candidateBytes > MAX_BOUNDARY_LINE) {
      // Too long for a boundary: ordinary body text.
      this.bodyBytes(Buffer.concat(this.candidate));
      this.candidate = undefined;
    } else if (newline !== -1) {
      const line = Buffer.concat(this.candidate);
      this.candidate = undefined;
      if (!this.boundaryLine(line.toString('latin1').replace(/[ \t\r\n]+$/, ''))) this.bodyBytes(line);
    }
    return end;
  }

  /** Handles a body line that may be a boundary; returns false when it is not one. */
  private boundaryLine(line: string): boolean {
    for (let level = this.delimiters.length - 1; level >= 0; level--) {
      const delimiter = this.delimiters[level]!;
      if (line !== delimiter.open && line !== delimiter.close) continue;
      this.finishBody();
      if (line === delimiter.close) {
        // The epilogue of that multipart follows; deeper open ones ended with it.
        this.delimiters.length = level;
        this.mode = 'body';
      } else {
        this.delimiters.length = level + 1;
        this.mode = 'headers';
        this.headerDepth = delimiter.depth + 1;
      }
      return true;
    }
    return false;
  }

  private bodyBytes(bytes: Buffer): void {
    const collecting = this.collecting;
    if (!collecting || bytes.length === 0) return;
    collecting.chunks.push(Buffer.from(bytes));
    collecting.bytes += bytes.length;
    this.collectedBytes += bytes.length;
    if (this.collectedBytes > this.limits.maxCollectedBytes) {
      throw new MimeLimitError(`bodies to inspect are larger than ${this.limits.maxCollectedBytes} bytes`);
    }
    if (collecting.state === 'sniff') this.sniff(collecting);
  }

  /** Decides from the first bytes whether the body is wanted. */
  private sniff(collecting: NonNullable<Collecting>): void {
    const encoded = Buffer.concat(collecting.chunks);
    const significant = collecting.part.encoding === 'base64' ? encoded.toString('latin1').replace(/[^A-Za-z0-9+/]/g, '') : encoded.toString('latin1');
    if (significant.length < SNIFF_CHARACTERS) return;
    const head = collecting.part.encoding === 'base64' ? Buffer.from(significant.slice(0, SNIFF_CHARACTERS), 'base64') : encoded;
    if (this.prefixes.some((prefix) => head.subarray(0, prefix.length).equals(prefix))) {
      collecting.state = 'all';
      collecting.chunks = [encoded];
    } else {
      this.collectedBytes -= collecting.bytes;
      this.collecting = undefined;
    }
  }

  private finishBody(): void {
    if (this.candidate !== undefined) {
      this.bodyBytes(Buffer.concat(this.candidate));
      this.candidate = undefined;
    }
    const collecting = this.collecting;
    this.collecting = undefined;
    if (collecting?.state === 'sniff') this.collectedBytes -= collecting.bytes;
    if (collecting?.state === 'all') this.collected.push({ part: collecting.part, bytes: decodeBody(collecting.part.encoding, collecting.chunks) });
  }
}

/** Options of {@link scanMimeStructure}. */
export interface MimeScanOptions {
  readonly limits?: Partial<MimeScanLimits>;
  /** Collect leaf bodies whose decoded bytes start with one of these (e.g. the zip signatures). */
  readonly collectPrefixes?: readonly Buffer[];
  /** Stops the scan when aborted. */
  readonly signal?: AbortSignal;
}

/**
 * Yields a message in slices: read from a file (a regular file only; a small one in a single
 * synchronous read, as the other spool reads) or cut from memory. The scan's own bounds apply to
 * what is yielded, so the read itself is not bounded here beyond the small-file size.
 */
async function* slicesOf(source: string | Buffer): AsyncGenerator<Buffer> {
  if (typeof source === 'string') source = readSmallFileSync(source, Number.POSITIVE_INFINITY, 'message') ?? source;
  if (typeof source !== 'string') {
    for (let offset = 0; offset < source.length; offset += READ_SLICE_BYTES) {
      // Let other connections be served between two slices, as between two reads of a file.
      if (offset > 0) await new Promise((resolve) => setImmediate(resolve));
      yield source.subarray(offset, offset + READ_SLICE_BYTES);
    }
    return;
  }
  const handle = await openRegularFile(source, 'read');
  try {
    for (;;) {
      const slice = Buffer.allocUnsafe(READ_SLICE_BYTES);
      const { bytesRead } = await handle.read(slice, 0, slice.length, null);
      if (bytesRead === 0) return;
      yield slice.subarray(0, bytesRead);
    }
  } finally {
    await handle.close();
  }
}

/**
 * Scans the MIME structure of a message: a file (its path) or bytes in memory. Line ends may be
 * LF or CRLF.
 *
 * @throws MimeLimitError when the message goes past a bound: it was not fully inspected
 */
export async function scanMimeStructure(source: string | Buffer, options: MimeScanOptions = {}): Promise<MimeStructure> {
  if (libmime === undefined) await loadMimeScanner();
  const limits = { ...DEFAULT_MIME_SCAN_LIMITS, ...options.limits };
  const started = Date.now();
  const scanner = new StructureScanner(limits, options.collectPrefixes ?? []);
  const what = typeof source === 'string' ? source : 'the message';
  let total = 0;
  for await (const slice of slicesOf(source)) {
    options.signal?.throwIfAborted();
    assertRequestOpen(`scanning ${what}`);
    if (Date.now() - started > limits.maxMs) throw new MimeLimitError(`scanning took longer than ${limits.maxMs} ms`);
    total += slice.length;
    if (total > limits.maxBytes) throw new MimeLimitError(`message is larger than ${limits.maxBytes} bytes`);
    scanner.feed(slice);
  }
  scanner.end();
  return { parts: scanner.parts, collected: scanner.collected };
}
