/**
 * The message (Courier's data file) for reading and in-place rewriting — pythonfilter's XFilter
 * without the re-serialisation: edits are made on the raw bytes, so every header and body byte
 * that was not edited stays byte-identical. A parser (postal-mime) is used only to read.
 *
 * @packageDocumentation
 */
import PostalMime from 'postal-mime';
import type { Email, PostalMimeOptions } from 'postal-mime';
import { openRegularFile, readRegularFile } from './files.js';
import { assertRequestOpen, currentRequestSignal, RequestAnsweredError } from './request-scope.js';

/** Messages larger than this are refused rather than read into memory. */
export const DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

const LF = 0x0a;

/** One header field as it sits in the message. */
export interface HeaderField {
  /** Field name as written (case kept); empty for a line that is not a header field. */
  readonly name: string;
  /** Unfolded value, leading whitespace removed, decoded as UTF-8 (RFC 2047 words left as is). */
  readonly value: string;
  /** The exact bytes, folding and line end included. */
  readonly raw: Buffer;
}

interface SplitMessage {
  fields: HeaderField[];
  separator: Buffer;
  body: Buffer;
}

const utf8 = new TextDecoder('utf-8');

function fieldFromRaw(raw: Buffer): HeaderField {
  const text = utf8.decode(raw);
  const colon = text.indexOf(':');
  const name = colon > 0 && /^[!-9;-~]+$/.test(text.slice(0, colon)) ? text.slice(0, colon) : '';
  return { name, value: name ? unfoldedValue(text, colon + 1) : '', raw };
}

/** The value of a field's text from `start`: unfolded, without its line end and leading whitespace. */
function unfoldedValue(text: string, start: number): string {
  const firstLineEnd = text.indexOf('\n', start);
  // Most fields are one line: no expressions needed.
  const folded = firstLineEnd !== -1 && firstLineEnd < text.length - 1;
  let end = text.length;
  if (!folded && end > start && text.charCodeAt(end - 1) === LF) end -= text.charCodeAt(end - 2) === 0x0d && end - 2 >= start ? 2 : 1;
  let from = start;
  while (from < end && (text.charCodeAt(from) === 0x20 || text.charCodeAt(from) === 0x09)) from++;
  if (!folded) return text.slice(from, end);
  return text.slice(from).replace(/\r?\n(?=[ \t])/g, '').replace(/\r?\n$/, '').replace(/^[ \t]+/, '');
}

/** A first line that starts with whitespace: a continuation with no field before it. */
function isOrphanContinuation(field: HeaderField): boolean {
  return field.raw[0] === 0x20 || field.raw[0] === 0x09;
}

/** Splits raw message bytes into header fields, the blank separator line and the body. */
export function splitMessage(bytes: Buffer): SplitMessage {
  const fields: Buffer[] = [];
  let position = 0;
  while (position < bytes.length) {
    const end = bytes.indexOf(LF, position);
    const lineEnd = end === -1 ? bytes.length : end + 1;
    const line = bytes.subarray(position, lineEnd);
    const isBlank = line.length === 1 || (line.length === 2 && line[0] === 0x0d) || line.length === 0;
    if (isBlank) {
      return { fields: fields.map(fieldFromRaw), separator: line, body: bytes.subarray(lineEnd) };
    }
    const isContinuation = (line[0] === 0x20 || line[0] === 0x09) && fields.length > 0;
    // A continuation line follows its field in the file: the field's view is widened, not copied.
    if (isContinuation) fields[fields.length - 1] = bytes.subarray(lineEnd - line.length - fields[fields.length - 1]!.length, lineEnd);
    else fields.push(line);
    position = lineEnd;
  }
  return { fields: fields.map(fieldFromRaw), separator: Buffer.alloc(0), body: Buffer.alloc(0) };
}

/** Encodes a header value that has non-ASCII characters as RFC 2047 UTF-8 "B" words. */
export function encodeHeaderWords(value: string): string {
  if (/^[\x00-\x7f]*$/.test(value)) return value;
  // Split on whole characters so no encoded word exceeds 75 octets and no UTF-8 sequence is cut.
  const words: string[] = [];
  let chunk = '';
  for (const char of value) {
    if (Buffer.byteLength(chunk + char) > 45) {
      words.push(chunk);
      chunk = '';
    }
    chunk += char;
  }
  if (chunk) words.push(chunk);
  return words.map((w) => `=?UTF-8?B?${Buffer.from(w).toString('base64')}?=`).join('\n ');
}

/** Options for adding or changing a header value. */
export interface HeaderValueOptions {
  /** Write non-ASCII characters as raw UTF-8 instead of RFC 2047 encoded words. */
  raw8bit?: boolean;
}

function formatField(name: string, value: string, options: HeaderValueOptions = {}): Buffer {
  if (!/^[!-9;-~]+$/.test(name)) throw new Error(`invalid header field name: ${JSON.stringify(name)}`);
  const text = options.raw8bit ? value : encodeHeaderWords(value);
  // Line ends become LF (Courier's data files use LF); a line of a multi-line value that does
  // not start with whitespace would end the field, so it gets a tab.
  const lines = text.replace(/\r\n?/g, '\n').replace(/\n+$/, '').split('\n');
  const folded = lines.map((line, i) => (i === 0 || /^[ \t]/.test(line) ? line : '\t' + line)).join('\n');
  return Buffer.from(`${name}: ${folded}\n`, 'utf8');
}

/**
 * A Courier data file opened for reading and editing. Edits stay in memory until
 * {@link CourierMessage.save}, which rewrites the same file (same inode) in place.
 *
 * @example
 * ```ts
 * const message = await CourierMessage.open(bodyPath);
 * message.addHeader('X-Scanned', 'yes');
 * await message.save();
 * ```
 */
export class CourierMessage {
  private fields: HeaderField[];
  private separator: Buffer;
  private body: Buffer;
  private dirty = false;
  private parsed: Promise<Email> | undefined;
  private released: string | undefined;

  private constructor(
    /** Path of the data file. */
    readonly path: string,
    bytes: Buffer,
    private readonly signal: AbortSignal | undefined,
  ) {
    const split = splitMessage(bytes);
    this.fields = split.fields;
    this.separator = split.separator;
    this.body = split.body;
    // Once the message has been answered for, a module that hangs on to this object must not
    // keep the whole message in memory: the content is dropped and any further use throws.
    signal?.addEventListener('abort', () => this.release(), { once: true });
  }

  /**
   * Reads a data file (a regular file only, refusing more than `maxBytes`). Inside the module
   * chain the message is tied to the module's signal: when the module's answer has been taken or
   * its deadline has passed, the content is released and every further use throws.
   */
  static async open(path: string, options: { maxBytes?: number; signal?: AbortSignal } = {}): Promise<CourierMessage> {
    const bytes = await readRegularFile(path, options.maxBytes ?? DEFAULT_MAX_MESSAGE_BYTES, 'message');
    return new CourierMessage(path, bytes, options.signal ?? currentRequestSignal());
  }

  /** Wraps bytes already in memory (for tools and tests). */
  static fromBytes(path: string, bytes: Buffer): CourierMessage {
    return new CourierMessage(path, bytes, undefined);
  }

  private release(): void {
    this.released = this.signal?.reason instanceof Error ? this.signal.reason.message : 'message released';
    this.fields = [];
    this.separator = Buffer.alloc(0);
    this.body = Buffer.alloc(0);
    this.parsed = undefined;
  }

  private live(): this {
    if (this.released !== undefined) throw new RequestAnsweredError(`message ${this.path} is no longer available: ${this.released}`);
    return this;
  }

  /** True once an edit was made and not yet saved. */
  get modified(): boolean {
    return this.dirty;
  }

  /** The message bytes, edits included. */
  get bytes(): Buffer {
    this.live();
    return Buffer.concat([...this.fields.map((f) => f.raw), this.separator, this.body]);
  }

  /** The body bytes (after the blank line), edits included. */
  get bodyBytes(): Buffer {
    return this.live().body;
  }

  /** Every header field in order. */
  headers(): readonly HeaderField[] {
    return this.live().fields;
  }

  /** Values of every field with this name (case-insensitive), in order. */
  headerValues(name: string): string[] {
    const wanted = name.toLowerCase();
    return this.live().fields.filter((f) => f.name.toLowerCase() === wanted).map((f) => f.value);
  }

  /** The first value of a field, or undefined. */
  header(name: string): string | undefined {
    return this.headerValues(name)[0];
  }

  /** The message parsed by postal-mime (for reading only; reflects edits made so far). */
  parse(options: PostalMimeOptions = {}): Promise<Email> {
    this.parsed ??= PostalMime.parse(this.bytes, options);
    return this.parsed;
  }

  private changed(): void {
    this.live();
    this.dirty = true;
    this.parsed = undefined;
  }

  private indexOfOccurrence(name: string, occurrence: number): number {
    if (!Number.isInteger(occurrence) || occurrence < 1) throw new RangeError(`occurrence must be 1 or more, got ${occurrence}`);
    const wanted = name.toLowerCase();
    let seen = 0;
    return this.fields.findIndex((f) => f.name.toLowerCase() === wanted && ++seen === occurrence);
  }

  /** Appends a field at the end of the header. */
  addHeader(name: string, value: string, options?: HeaderValueOptions): void {
    this.insertHeader(this.fields.length, name, value, options);
  }

  /** Inserts a field before position `index` (0 = first field; clamped to the header's length). */
  insertHeader(index: number, name: string, value: string, options?: HeaderValueOptions): void {
    let position = Math.max(0, Math.min(index, this.fields.length));
    // A data file may start with a whitespace line that belongs to no field; a field inserted
    // before it would absorb it as a continuation, so new fields go after such lines.
    while (position < this.fields.length && isOrphanContinuation(this.fields[position]!)) position++;
    const previous = this.fields[position - 1];
    if (previous && previous.raw[previous.raw.length - 1] !== LF) {
      // The old last line had no line end (a data file cut short); it needs one before a new field.
      this.fields[position - 1] = fieldFromRaw(Buffer.concat([previous.raw, Buffer.from('\n')]));
    }
    this.fields.splice(position, 0, fieldFromRaw(formatField(name, value, options)));
    if (this.separator.length === 0 && this.body.length === 0) this.separator = Buffer.from('\n');
    this.changed();
  }

  /**
   * Replaces the value of the `occurrence`-th field named `name` (1-based). Returns false when
   * there is no such field.
   */
  changeHeader(name: string, occurrence: number, value: string, options?: HeaderValueOptions): boolean {
    const index = this.indexOfOccurrence(name, occurrence);
    if (index === -1) return false;
    this.fields[index] = fieldFromRaw(formatField(this.fields[index]!.name, value, options));
    this.changed();
    return true;
  }

  /** Deletes the `occurrence`-th field named `name` (1-based). Returns false when there is none. */
  deleteHeader(name: string, occurrence = 1): boolean {
    const index = this.indexOfOccurrence(name, occurrence);
    if (index === -1) return false;
    this.fields.splice(index, 1);
    this.changed();
    return true;
  }

  /** Deletes every field with this name; returns how many were removed. */
  deleteAllHeaders(name: string): number {
    const wanted = name.toLowerCase();
    const before = this.fields.length;
    this.fields = this.fields.filter((f) => f.name.toLowerCase() !== wanted);
    const removed = before - this.fields.length;
    if (removed > 0) this.changed();
    return removed;
  }

  /** Replaces the body (CRLF and CR become LF, as in Courier's data files). */
  replaceBody(body: Buffer | string): void {
    const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
    this.body = Buffer.from(bytes.toString('latin1').replace(/\r\n?/g, '\n'), 'latin1');
    if (this.separator.length === 0) this.separator = Buffer.from('\n');
    this.changed();
  }

  /**
   * Writes the edited message back into the same file (same inode: Courier keeps its path and
   * its link to the control file), ending with a newline, and syncs it to disk. Does nothing
   * when there is no edit. Returns whether it wrote.
   */
  async save(): Promise<boolean> {
    assertRequestOpen(`saving ${this.path}`, this.signal);
    if (!this.live().dirty) return false;
    let bytes = this.bytes;
    if (bytes.length > 0 && bytes[bytes.length - 1] !== LF) bytes = Buffer.concat([bytes, Buffer.from('\n')]);
    const handle = await openRegularFile(this.path, 'update');
    try {
      await handle.write(bytes, 0, bytes.length, 0);
      await handle.truncate(bytes.length);
      await handle.sync();
    } finally {
      await handle.close();
    }
    this.dirty = false;
    return true;
  }
}
