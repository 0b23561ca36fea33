/**
 * Byte-to-text rules shared by the Courier helpers. Control files and request lines carry bytes
 * typed by remote SMTP clients, which need not be valid UTF-8.
 *
 * @packageDocumentation
 */

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** Prefix that marks a value whose bytes were not valid UTF-8 (pythonfilter's convention). */
export const MALFORMED_UTF8_PREFIX = '(malformed utf8):';

/**
 * Decodes bytes as UTF-8. Invalid input does not throw and is not silently replaced: it becomes
 * `(malformed utf8):` followed by the bytes percent-encoded (RFC 1738 style), so that filters
 * can still compare, log and match it without losing information.
 */
export function decodeUtf8OrMark(bytes: Uint8Array): string {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    return MALFORMED_UTF8_PREFIX + percentEncode(bytes);
  }
}

function percentEncode(bytes: Uint8Array): string {
  let out = '';
  for (const byte of bytes) {
    const isUnreserved =
      (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a) ||
      byte === 0x2d || byte === 0x2e || byte === 0x5f || byte === 0x7e || byte === 0x40;
    out += isUnreserved ? String.fromCharCode(byte) : '%' + byte.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}
