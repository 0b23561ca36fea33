/**
 * A mail message as an MTA holds it: an ordered list of header fields, and a body with CRLF line
 * ends. Header values are kept exactly as they follow the colon (leading space included), with
 * folded lines joined by LF, which is how both MTAs hand them to milters.
 */

/** One header field. */
export interface HeaderField {
  /** The field name as written, without the colon. */
  name: string;
  /** Everything after the colon: leading whitespace kept, continuation lines joined with `\n`. */
  value: string;
}

/** A message: header fields in order, then the body. */
export interface MailMessage {
  headers: HeaderField[];
  /** The body with CRLF line ends, as MTAs pass it to milters; empty when there is none. */
  body: Buffer;
}

const LF = 0x0a;
const CR = 0x0d;

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

/** Whether a line starts a header field: a name of printable characters, then a colon. */
function headerNameLength(line: string): number {
  const match = /^([\x21-\x39\x3b-\x7e]+)[ \t]*:/.exec(line);
  return match === null ? -1 : match[0].length - 1;
}

/**
 * Parses a message in RFC 5322 form (an `.eml` file), with CRLF or LF line ends. The header ends
 * at the first empty line, or, as in Postfix, at the first line that is neither a header field
 * nor a continuation line (that line then starts the body). A leading mbox `From ` line is
 * skipped.
 */
export function parseMessage(input: Buffer | string): MailMessage {
  const data = typeof input === 'string' ? Buffer.from(input, 'utf8') : input;
  const headers: HeaderField[] = [];
  let offset = 0;
  let first = true;
  while (offset < data.length) {
    const lf = data.indexOf(LF, offset);
    const next = lf < 0 ? data.length : lf + 1;
    const end = lf < 0 ? data.length : lf > offset && data[lf - 1] === CR ? lf - 1 : lf;
    const line = data.toString('utf8', offset, end);
    if (line === '') {
      offset = next;
      break;
    }
    if (first && line.startsWith('From ')) {
      first = false;
      offset = next;
      continue;
    }
    first = false;
    const previous = headers[headers.length - 1];
    if ((line[0] === ' ' || line[0] === '\t') && previous !== undefined) {
      previous.value += '\n' + line;
    } else {
      const nameLength = headerNameLength(line);
      if (nameLength < 0) break;
      headers.push({ name: line.slice(0, nameLength), value: line.slice(line.indexOf(':', nameLength) + 1) });
    }
    offset = next;
  }
  return { headers, body: toCrlf(data.subarray(offset)) };
}

/** Writes a message back out with CRLF line ends. */
export function serializeMessage(message: MailMessage): Buffer {
  const head = message.headers.map((field) => `${field.name}:${field.value.replace(/\n/g, '\r\n')}\r\n`).join('');
  return Buffer.concat([Buffer.from(head + '\r\n', 'utf8'), message.body]);
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
