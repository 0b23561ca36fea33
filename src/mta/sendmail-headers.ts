/**
 * What Sendmail 8.17 does to header fields on delivery, as observed against the real MTA (the e2e
 * case `address-headers`): the fields it knows as address lists are parsed and written back out,
 * the addresses separated by `, `, folded lines joined, a long list folded again before column 78
 * with eight spaces; `Bcc:`, `Resent-Bcc:`, `Return-Path:` and `Content-Length:` are left out.
 * Other fields are delivered as received.
 */
import { UNDELIVERED_FIELDS, fieldNamed, headerField, headerValueBytes, type HeaderField } from './message.js';

/** Sendmail's originator and destination fields (its `H_FROM` and `H_RCPT` header flags). */
const ADDRESS_FIELDS: ReadonlySet<string> = new Set([
  'resent-sender',
  'resent-from',
  'resent-reply-to',
  'sender',
  'from',
  'reply-to',
  'errors-to',
  'disposition-notification-to',
  'to',
  'resent-to',
  'cc',
  'resent-cc',
  'bcc',
  'resent-bcc',
  'apparently-to',
]);

/** Sendmail folds an address list once a line would pass this column... */
const FOLD_COLUMN = 78;
/** ...and starts the continuation line with this. */
const CONTINUATION = '        ';

/**
 * The addresses of a list, split at the commas outside quoted strings, comments and angle
 * brackets (a group's members are addresses of their own), unfolded and trimmed.
 */
export function splitAddressList(value: string): string[] {
  const addresses: string[] = [];
  let current = '';
  let quoted = false;
  let comment = 0;
  let angle = false;
  for (let i = 0; i < value.length; i++) {
    const char = value[i]!;
    if (char === '\n') continue;
    if (char === '\\' && (quoted || comment > 0) && i + 1 < value.length) {
      current += char + value[++i];
      continue;
    }
    if (quoted) quoted = char !== '"';
    else if (char === '"') quoted = true;
    else if (char === '(') comment++;
    else if (char === ')' && comment > 0) comment--;
    else if (comment === 0 && char === '<') angle = true;
    else if (comment === 0 && char === '>') angle = false;
    else if (comment === 0 && !angle && char === ',') {
      addresses.push(current.trim());
      current = '';
      continue;
    }
    current += char;
  }
  addresses.push(current.trim());
  return addresses.filter((address) => address !== '');
}

/** An address list as Sendmail writes it after `name:`, folded as it folds it. */
export function formatAddressList(name: string, addresses: readonly string[]): string {
  let text = '';
  let column = name.length + 2;
  for (const [index, address] of addresses.entries()) {
    if (index === 0) {
      text = address;
      column += address.length;
      continue;
    }
    column += address.length + 2;
    if (column > FOLD_COLUMN) {
      text += `,\n${CONTINUATION}${address}`;
      column = CONTINUATION.length + address.length;
    } else {
      text += `, ${address}`;
    }
  }
  return text;
}

/** One field as Sendmail delivers it: address lists rewritten, anything else unchanged. */
function deliveredField(field: HeaderField): HeaderField {
  if (!fieldNamed(field, ADDRESS_FIELDS)) return field;
  // Addresses are ASCII syntax around arbitrary bytes: work on the bytes one character each.
  const raw = field.raw !== undefined;
  const value = raw ? headerValueBytes(field).toString('latin1') : field.value;
  const addresses = splitAddressList(value);
  if (addresses.length === 0) return field;
  const written = ` ${formatAddressList(field.name.trim(), addresses)}`;
  return raw ? headerField(field.name, Buffer.from(written, 'latin1')) : { name: field.name, value: written };
}

/** The header fields as Sendmail writes them into the delivered copy. */
export function sendmailDeliveredFields(fields: readonly HeaderField[]): HeaderField[] {
  return fields.filter((field) => !fieldNamed(field, UNDELIVERED_FIELDS)).map(deliveredField);
}
