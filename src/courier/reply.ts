/**
 * Replies between filter modules, the daemon and Courier. Modules answer with pythonfilter's
 * strings; Courier wants SMTP-style lines, newline-terminated, with the same code on every line
 * of a multi-line reply (a mixed-code reply confuses courieresmtpd).
 *
 * @packageDocumentation
 */

/** What Courier does with a reply, by its first digit. */
export type ReplyEffect =
  /** `0xx`: accept and skip every later filter (Courier shows the client `2xx`). */
  | 'accept-skip-all'
  /** `4xx`: temporary rejection. */
  | 'tempfail'
  /** `5xx`: permanent rejection. */
  | 'reject'
  /** Any other digit (`2xx` typically): accept; Courier continues with its next filter. */
  | 'accept';

/** A reply with one code and one or more text lines. */
export interface FilterReply {
  /** Three digits. */
  readonly code: string;
  /** Text lines without codes; at least one (possibly empty). */
  readonly lines: readonly string[];
}

/** Bounds on what a module may answer. */
export const MAX_REPLY_LINES = 32;
export const MAX_REPLY_LINE_LENGTH = 512;

/** Thrown when a module's answer is not a valid reply. */
export class InvalidReplyError extends Error {
  override name = 'InvalidReplyError';
}

/**
 * Parses a module's answer. The empty string (or undefined) means "no decision" and yields
 * undefined. Lines after the first may repeat a code (`550-a\n550 b`) or carry text only; the
 * first line's code is used for all of them.
 *
 * @throws InvalidReplyError when the answer is not a string or does not start with three digits
 */
export function parseModuleReply(answer: unknown): FilterReply | undefined {
  if (answer === undefined || answer === null || answer === '') return undefined;
  if (typeof answer !== 'string') throw new InvalidReplyError(`module returned ${typeof answer}, expected a string`);
  const rawLines = answer.replace(/\r/g, '').replace(/\n+$/, '').split('\n');
  const first = /^(\d{3})(?:[ -]|$)(.*)$/.exec(rawLines[0]!);
  if (!first) throw new InvalidReplyError(`reply does not start with a three-digit code: ${JSON.stringify(answer.slice(0, 80))}`);
  if (rawLines.length > MAX_REPLY_LINES) throw new InvalidReplyError(`reply has ${rawLines.length} lines (limit ${MAX_REPLY_LINES})`);
  const lines = [first[2]!, ...rawLines.slice(1).map((line) => /^\d{3}(?:[ -]|$)(.*)$/.exec(line)?.[1] ?? line)];
  return { code: first[1]!, lines: lines.map((l) => l.slice(0, MAX_REPLY_LINE_LENGTH)) };
}

/** The effect of a reply code's first digit on Courier. */
export function replyEffect(code: string): ReplyEffect {
  switch (code[0]) {
    case '0':
      return 'accept-skip-all';
    case '4':
      return 'tempfail';
    case '5':
      return 'reject';
    default:
      return 'accept';
  }
}

/** Formats a reply for Courier: `550-a\n550 b\n` (always newline-terminated). */
export function formatReply(reply: FilterReply): string {
  const lines = reply.lines.length > 0 ? reply.lines : [''];
  return lines.map((line, i) => `${reply.code}${i < lines.length - 1 ? '-' : ' '}${line}`).join('\n') + '\n';
}

/** Builds a reply from a code and text (text may span lines). */
export function reply(code: string, text: string): FilterReply {
  return { code, lines: text.split('\n') };
}
