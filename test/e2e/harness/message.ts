/** Reading delivered or held messages: raw bytes split into header fields and body. */

/** One header field as stored, with its name and its unfolded value. */
export interface HeaderField {
  name: string;
  /** Value after the colon, unfolded (line breaks removed, following whitespace kept), trimmed. */
  value: string;
}

/** A message parsed just enough for the suite's assertions. */
export interface ParsedMessage {
  headers: HeaderField[];
  /** Body with LF line ends (both MTAs hand LF-terminated lines to their delivery programs). */
  body: Buffer;
  raw: Buffer;
}

/** Splits a message (CRLF or LF line ends) into header fields and body. Bytes are decoded as UTF-8. */
export function parseMessage(raw: Buffer): ParsedMessage {
  const text = raw.toString('latin1').replace(/\r\n/g, '\n');
  const separator = text.startsWith('\n') ? 0 : text.indexOf('\n\n');
  const headerText = separator < 0 ? text : text.slice(0, separator);
  const bodyText = separator < 0 ? '' : text.slice(separator + (separator === 0 ? 1 : 2));
  const headers: HeaderField[] = [];
  for (const line of headerText.split('\n')) {
    if (line === '') continue;
    const last = headers[headers.length - 1];
    if (/^[ \t]/.test(line) && last) {
      last.value = `${last.value}${line}`;
      continue;
    }
    const colon = line.indexOf(':');
    headers.push(colon < 0 ? { name: line, value: '' } : { name: line.slice(0, colon).trim(), value: line.slice(colon + 1) });
  }
  for (const field of headers) {
    field.name = Buffer.from(field.name, 'latin1').toString('utf8');
    field.value = Buffer.from(field.value, 'latin1').toString('utf8').trim();
  }
  return { headers, body: Buffer.from(bodyText, 'latin1'), raw };
}

/** Values of every field named `name` (case-insensitive), in message order. */
export function headerValues(message: ParsedMessage, name: string): string[] {
  const wanted = name.toLowerCase();
  return message.headers.filter((field) => field.name.toLowerCase() === wanted).map((field) => field.value);
}
