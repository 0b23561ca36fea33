/**
 * A mail message as an MTA holds it: an ordered list of header fields, and a body with CRLF line
 * ends. Header values are kept exactly as they follow the colon (leading space included), with
 * folded lines joined by LF, which is how both MTAs hand them to milters. Header bytes that are not
 * UTF-8 (Latin-1, raw 8-bit) are kept as they are: both MTAs pass them on untouched.
 */
import { isUtf8 } from 'node:buffer';

/** One header field. */
export interface HeaderField {
  /** The field name as written, without the colon. */
  name: string;
  /** Everything after the colon: leading whitespace kept, continuation lines joined with `\n`. */
  value: string;
  /**
   * The bytes of `value` when they are not UTF-8 (`value` then shows U+FFFD in their place). These
   * bytes, not `value`, are what the milter gets and what is delivered.
   */
  raw?: Buffer;
}

/** A message: header fields in order, then the body. */
export interface MailMessage {
  headers: HeaderField[];
  /** The body with CRLF line ends, as MTAs pass it to milters; empty when there is none. */
  body: Buffer;
}

const LF = 0x0a;
const CR = 0x0d;
const CRLF = Buffer.from('\r\n');

/** Splits bytes into lines at LF, dropping the LF and a CR just before it. The last line may lack its LF. */
function splitLines(data: Buffer): Buffer[] {
  const lines: Buffer[] = [];
  let start = 0;
  while (start < data.length) {
    let end = data.indexOf(LF, start);
    const next = end < 0 ? data.length : end + 1;
    if (end < 0) end = data.length;
    lines.push(data.subarray(start, end > start && data[end - 1] === CR ? end - 1 : end));
    start = next;
  }
  return lines;
}

/**
 * Rewrites text to CRLF line ends as MTAs store it: every line (including a last line without a
 * line end) ends with CRLF; bare CRs inside a line are kept.
 */
export function toCrlf(data: Buffer): Buffer {
  if (data.length === 0) return data;
  const lines = splitLines(data);
  const out = Buffer.allocUnsafe(data.length + lines.length * 2);
  let offset = 0;
  for (const line of lines) {
    offset += line.copy(out, offset);
    out[offset++] = CR;
    out[offset++] = LF;
  }
  return out.subarray(0, offset);
}

const COLON = 0x3a;
const SPACE = 0x20;
const TAB = 0x09;

/** The length of the name when a line starts a header field (printable characters, then a colon), else -1. */
function headerNameLength(line: Buffer): number {
  let end = 0;
  while (end < line.length && line[end]! >= 0x21 && line[end]! <= 0x7e && line[end] !== COLON) end++;
  if (end === 0) return -1;
  let colon = end;
  while (colon < line.length && (line[colon] === SPACE || line[colon] === TAB)) colon++;
  return line[colon] === COLON ? end : -1;
}

/** A header field from the bytes of its name and value; non-UTF-8 value bytes are kept in `raw`. */
export function headerField(name: string, value: Buffer): HeaderField {
  const field: HeaderField = { name, value: value.toString('utf8') };
  if (!isUtf8(value)) field.raw = value;
  return field;
}

/** The bytes of a field's value, as the milter gets it and as it is delivered. */
export function headerValueBytes(field: HeaderField): Buffer {
  return field.raw ?? Buffer.from(field.value, 'utf8');
}

/** A field with a new value (its old raw bytes dropped). */
export function withValue<F extends HeaderField>(field: F, value: string): F {
  const copy = { ...field, value };
  delete copy.raw;
  return copy;
}

/**
 * Parses a message in RFC 5322 form (an `.eml` file), with CRLF or LF line ends. The header ends
 * at the first empty line, or, as in Postfix, at the first line that is neither a header field
 * nor a continuation line (that line then starts the body). A leading mbox `From ` line is
 * skipped.
 */
export function parseMessage(input: Buffer | string): MailMessage {
  const data = typeof input === 'string' ? Buffer.from(input, 'utf8') : input;
  // Each field's name and the value bytes of its lines, decoded once the field is complete.
  const fields: Array<{ name: string; lines: Buffer[] }> = [];
  let offset = 0;
  let first = true;
  while (offset < data.length) {
    const lf = data.indexOf(LF, offset);
    const next = lf < 0 ? data.length : lf + 1;
    const end = lf < 0 ? data.length : lf > offset && data[lf - 1] === CR ? lf - 1 : lf;
    const line = data.subarray(offset, end);
    if (line.length === 0) {
      offset = next;
      break;
    }
    if (first && line.toString('latin1', 0, 5) === 'From ') {
      first = false;
      offset = next;
      continue;
    }
    first = false;
    const previous = fields[fields.length - 1];
    if ((line[0] === SPACE || line[0] === TAB) && previous !== undefined) {
      previous.lines.push(line);
    } else {
      const nameLength = headerNameLength(line);
      if (nameLength < 0) break;
      fields.push({ name: line.toString('latin1', 0, nameLength), lines: [line.subarray(line.indexOf(COLON, nameLength) + 1)] });
    }
    offset = next;
  }
  const newline = Buffer.from('\n');
  const headers = fields.map(({ name, lines }) => headerField(name, Buffer.concat(lines.flatMap((part, index) => (index === 0 ? [part] : [newline, part])))));
  return { headers, body: toCrlf(data.subarray(offset)) };
}

/** Writes a message back out with CRLF line ends. */
export function serializeMessage(message: MailMessage): Buffer {
  const parts: Buffer[] = [];
  for (const field of message.headers) {
    const value = headerValueBytes(field);
    // toCrlf ends every line, the last one included; an empty value still needs its line end.
    parts.push(Buffer.from(`${field.name}:`, 'utf8'), value.length === 0 ? CRLF : toCrlf(value));
  }
  parts.push(CRLF, message.body);
  return Buffer.concat(parts);
}

/**
 * Fields neither MTA delivers (Postfix's `message_drop_headers` default): Postfix removes them
 * before the milters see the header, Sendmail shows them to milters and leaves them out on delivery.
 */
export const UNDELIVERED_FIELDS: ReadonlySet<string> = new Set(['bcc', 'resent-bcc', 'return-path', 'content-length']);

/** Whether a field is one of the names in `set` (lower case; the field's case and trailing blanks ignored). */
export function fieldNamed(field: HeaderField, set: ReadonlySet<string>): boolean {
  return set.has(field.name.trim().toLowerCase());
}

/** A deep copy, so that edits do not reach the caller's message. */
export function cloneMessage(message: MailMessage): MailMessage {
  return { headers: message.headers.map((field) => ({ ...field })), body: message.body };
}

/** The value of the `n`th (1-based) header field called `name` (any case), without its leading whitespace, or undefined. */
export function headerValue(message: MailMessage, name: string, n = 1): string | undefined {
  const lower = name.toLowerCase();
  const field = message.headers.filter((h) => h.name.trim().toLowerCase() === lower)[n - 1];
  return field?.value.replace(/^[ \t]+/, '');
}

/** Mail addresses (`local@domain`) found in address header values, in order; used to default the envelope. */
export function addressesIn(values: readonly string[]): string[] {
  const found: string[] = [];
  for (const value of values) {
    // Display names and comments may hold '@' or ','; drop them before splitting the list.
    const plain = value.replace(/"(?:[^"\\]|\\.)*"/g, '""').replace(/\([^()]*\)/g, ' ');
    for (const entry of plain.split(',')) {
      const address = /<([^<>\s]*@[^<>\s]*)>/.exec(entry)?.[1] ?? /[^\s<>:;"]+@[^\s<>:;"]+/.exec(entry)?.[0];
      if (address !== undefined) found.push(address);
    }
  }
  return found;
}
