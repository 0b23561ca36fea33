/**
 * What Courier's `submit` changes in a message before any filter sees it, as the offline `courier`
 * profile models it (observed on Debian 12's Courier 1.0.16, see test/courier/submit-rewrites.test.ts):
 *
 * - a header with neither `To:` nor `Cc:` gets `To: undisclosed-recipients: ;` at its end;
 * - a single-part text message that is MIME (`Mime-Version` or `Content-Transfer-Encoding`) and
 *   whose body is 7-bit gets its MIME fields rewritten as one block where `Mime-Version` was (at
 *   the end when there was none): `Mime-Version: 1.0`, the `Content-Type` (`text/plain` when absent,
 *   `charset=utf-8` added when it names none) and `Content-Transfer-Encoding: 7bit`; when it
 *   declared `8bit`, `X-Mime-Autoconverted: from 8bit to 7bit by courier 1.0` ends the header.
 *
 * Courier's other MIME rewriting (multipart messages, 8-bit bodies sent without 8BITMIME) is not
 * modelled: such messages are written as the client sent them.
 *
 * @packageDocumentation
 */

/** One header field: its lower-case name and its lines as written (LF line ends). */
interface Field {
  name: string;
  text: string;
}

function splitFields(head: string): Field[] {
  const fields: Field[] = [];
  for (const line of head.split(/(?<=\n)/)) {
    const last = fields.at(-1);
    if (/^[ \t]/.test(line) && last) last.text += line;
    else fields.push({ name: line.slice(0, Math.max(0, line.indexOf(':'))).trim().toLowerCase(), text: line });
  }
  return fields;
}

const valueOf = (field: Field | undefined): string | undefined =>
  field === undefined ? undefined : field.text.slice(field.text.indexOf(':') + 1).replace(/\s*\n\s*/g, ' ').trim();

/** The MIME block Courier writes for a 7-bit single-part text message, or undefined when it keeps the fields. */
function mimeBlock(fields: Field[], body: string): { block: string; autoconverted: boolean } | undefined {
  const find = (name: string) => fields.find((field) => field.name === name);
  const encoding = valueOf(find('content-transfer-encoding'));
  if (find('mime-version') === undefined && encoding === undefined) return undefined;
  if (/[\x80-\xff]/.test(body)) return undefined;
  const type = valueOf(find('content-type')) ?? 'text/plain';
  if (!/^text\//i.test(type)) return undefined;
  const withCharset = /;\s*charset=/i.test(type) ? type : `${type}; charset=utf-8`;
  return {
    block: `Mime-Version: 1.0\nContent-Type: ${withCharset}\nContent-Transfer-Encoding: 7bit\n`,
    autoconverted: encoding?.toLowerCase() === '8bit',
  };
}

/**
 * Applies submit's changes to a message (LF line ends, bytes as latin1 characters).
 * @returns the message as Courier's data file holds it after submit, before its own `Received:`
 */
export function applySubmitRewrites(message: string): string {
  const separator = message.indexOf('\n\n');
  const head = separator < 0 ? message : message.slice(0, separator + 1);
  const body = separator < 0 ? '' : message.slice(separator + 1);
  let fields = splitFields(head);
  const names = new Set(fields.map((field) => field.name));
  const trailer = !names.has('to') && !names.has('cc') ? ['To: undisclosed-recipients: ;\n'] : [];
  const mime = mimeBlock(fields, body);
  if (mime !== undefined) {
    const isMime = (field: Field) => ['mime-version', 'content-type', 'content-transfer-encoding'].includes(field.name);
    const at = fields.findIndex((field) => field.name === 'mime-version');
    const block = { name: 'mime-version', text: mime.block };
    fields = fields.flatMap((field, index) => (index === at ? [block] : isMime(field) ? [] : [field]));
    if (at < 0) trailer.push(mime.block);
    if (mime.autoconverted) trailer.push('X-Mime-Autoconverted: from 8bit to 7bit by courier 1.0\n');
  }
  return fields.map((field) => field.text).join('') + trailer.join('') + body;
}
