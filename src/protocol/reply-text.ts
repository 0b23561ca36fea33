/**
 * Custom SMTP replies (the `y` REPLYCODE payload) with libmilter's rules: 4xx or 5xx codes only,
 * an enhanced status code of the same class, at most 32 lines of at most 980 bytes, no CR or LF
 * inside a line. Text is taken literally: every `%` is doubled for the MTA, which reads the text
 * as a format string (Sendmail drops the whole reply on a lone `%`, Postfix drops the `%`).
 */
import { Buffer } from 'node:buffer';
import { Limits } from './constants.js';

/** A custom reply that breaks the rules. */
export class ReplyCodeError extends Error {
  override readonly name = 'ReplyCodeError';
}

const CODE = /^[45][0-9][0-9]$/;
const ENHANCED = /^([245])\.[0-9]{1,3}\.[0-9]{1,3}$/;

/**
 * Builds the text of a `y` reply.
 * @param code three-digit SMTP code, 4xx or 5xx
 * @param xcode enhanced status code of the same class (e.g. `5.7.1`); for several lines it
 *   defaults to `4.0.0` / `5.0.0` as libmilter's setmlreply does
 * @param lines reply text, one entry per line (none for a bare code)
 * @throws ReplyCodeError
 */
export function formatReplyText(code: string, xcode: string | undefined, lines: readonly string[]): string {
  if (!CODE.test(code)) throw new ReplyCodeError(`reply code must be 4xx or 5xx, got "${code}"`);
  if (xcode !== undefined && xcode !== '') {
    const match = ENHANCED.exec(xcode);
    if (match === null) throw new ReplyCodeError(`enhanced status code must look like ${code[0]}.x.y, got "${xcode}"`);
    if (match[1] !== code[0]) throw new ReplyCodeError(`enhanced status code ${xcode} does not match the class of ${code}`);
  } else {
    xcode = lines.length > 1 ? `${code[0]}.0.0` : undefined;
  }
  if (lines.length > Limits.MAX_REPLY_LINES) throw new ReplyCodeError(`at most ${Limits.MAX_REPLY_LINES} reply lines, got ${lines.length}`);
  const escaped = lines.map((line, i) => {
    if (/[\r\n]/.test(line)) throw new ReplyCodeError(`reply line ${i + 1} holds CR or LF`);
    if (line.includes('\0')) throw new ReplyCodeError(`reply line ${i + 1} holds a NUL`);
    const out = line.replaceAll('%', '%%');
    if (Buffer.byteLength(out) > Limits.MAX_REPLY_LINE) {
      throw new ReplyCodeError(`reply line ${i + 1} is longer than ${Limits.MAX_REPLY_LINE} bytes`);
    }
    return out;
  });
  if (escaped.length === 0) return xcode === undefined ? `${code} ` : `${code} ${xcode}`;
  const prefix = xcode === undefined ? '' : `${xcode} `;
  const last = escaped.length - 1;
  return escaped.map((line, i) => `${code}${i === last ? ' ' : '-'}${prefix}${line}`).join('\r\n');
}

/** The verdict class a reply code goes with: `tempfail` for 4xx, `reject` for 5xx. */
export function replyCodeClass(text: string): 'tempfail' | 'reject' | undefined {
  return text[0] === '4' ? 'tempfail' : text[0] === '5' ? 'reject' : undefined;
}
