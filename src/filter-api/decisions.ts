/**
 * What a hook answers: a {@link Decision}. Hooks return one of these (or nothing, which means
 * `continue`); the chain engine and the front-ends turn it into the MTA's answer.
 *
 * @packageDocumentation
 */
import { formatReplyText } from '../protocol/reply-text.js';

/** An SMTP reply: a 4xx/5xx code, an optional enhanced status code and text lines. */
export interface SmtpReply {
  readonly code: string;
  readonly xcode?: string;
  readonly lines: readonly string[];
}

/**
 * A hook's answer.
 * - `continue`: no objection, the next filter runs.
 * - `accept`: accept the message and skip the rest of the chain (the filter's `for` list narrows
 *   this to skipping only the filters named there).
 * - `reject` / `tempfail`: refuse with a 5xx / 4xx reply; from a recipient hook, that recipient only.
 * - `discard`: accept the message and drop it.
 * - `quarantine`: accept the message, hold it in the MTA's quarantine with a reason, skip the rest.
 */
export type Decision =
  | { readonly kind: 'continue' }
  | { readonly kind: 'accept' }
  | { readonly kind: 'reject'; readonly reply: SmtpReply }
  | { readonly kind: 'tempfail'; readonly reply: SmtpReply }
  | { readonly kind: 'discard' }
  | { readonly kind: 'quarantine'; readonly reason: string };

/** What a hook may return. */
export type HookResult = Decision | void | undefined;

/** The kinds of decisions. */
export type DecisionKind = Decision['kind'];

/** Reply used by {@link reject} when no text is given. */
export const DEFAULT_REJECT: SmtpReply = Object.freeze({ code: '550', xcode: '5.7.1', lines: Object.freeze(['Message refused by mail filter']) });
/** Reply used by {@link tempfail} when no text is given. */
export const DEFAULT_TEMPFAIL: SmtpReply = Object.freeze({
  code: '451',
  xcode: '4.3.0',
  lines: Object.freeze(['Mail filter temporarily unavailable, please try again later']),
});

const CONTINUE: Decision = Object.freeze({ kind: 'continue' });
const ACCEPT: Decision = Object.freeze({ kind: 'accept' });
const DISCARD: Decision = Object.freeze({ kind: 'discard' });

/** Code and enhanced code of a reply, for {@link reject} and {@link tempfail}. */
export interface ReplyCodes {
  code?: string;
  xcode?: string;
}

/**
 * Builds and checks a reply (libmilter's rules, which Courier's also satisfy).
 * @throws ReplyCodeError when the code, enhanced code or lines break them
 */
export function smtpReply(kind: 'reject' | 'tempfail', text: string | readonly string[] | undefined, codes: ReplyCodes = {}): SmtpReply {
  const fallback = kind === 'reject' ? DEFAULT_REJECT : DEFAULT_TEMPFAIL;
  const lines = text === undefined ? fallback.lines : typeof text === 'string' ? text.split(/\r?\n/) : [...text];
  const code = codes.code ?? fallback.code;
  const xcode = codes.xcode ?? (codes.code === undefined ? fallback.xcode : undefined);
  if (code[0] !== (kind === 'reject' ? '5' : '4')) throw new RangeError(`a ${kind} reply needs a ${kind === 'reject' ? '5xx' : '4xx'} code, got ${code}`);
  formatReplyText(code, xcode, lines);
  return Object.freeze(xcode === undefined ? { code, lines: Object.freeze(lines) } : { code, xcode, lines: Object.freeze(lines) });
}

/** No objection: the next filter runs. Returning nothing means the same. */
export function continueWith(): Decision {
  return CONTINUE;
}

/** Accept the message and skip the rest of the chain. */
export function accept(): Decision {
  return ACCEPT;
}

/**
 * Refuse permanently (5xx). From a recipient hook, refuses that recipient only.
 * @example reject('Attachments of this type are not accepted', { code: '554', xcode: '5.7.1' })
 */
export function reject(text?: string | readonly string[], codes?: ReplyCodes): Decision {
  return { kind: 'reject', reply: smtpReply('reject', text, codes) };
}

/** Refuse temporarily (4xx): the client should retry later. From a recipient hook, that recipient only. */
export function tempfail(text?: string | readonly string[], codes?: ReplyCodes): Decision {
  return { kind: 'tempfail', reply: smtpReply('tempfail', text, codes) };
}

/** Accept the message and drop it. */
export function discard(): Decision {
  return DISCARD;
}

/** Accept the message but hold it in the MTA's quarantine, with a reason; skips the rest of the chain. */
export function quarantine(reason: string): Decision {
  if (reason === '' || /[\r\n\0]/.test(reason)) throw new RangeError('a quarantine reason is one non-empty line');
  return { kind: 'quarantine', reason };
}

/** One line for logs: `reject 550 5.7.1 text`. */
export function describeDecision(decision: Decision): string {
  switch (decision.kind) {
    case 'reject':
    case 'tempfail':
      return `${decision.kind} ${formatReply(decision.reply)}`;
    case 'quarantine':
      return `quarantine (${decision.reason})`;
    default:
      return decision.kind;
  }
}

/** A reply as one line of text, lines joined with ` / `. */
export function formatReply(reply: SmtpReply): string {
  return [reply.code, reply.xcode, reply.lines.join(' / ')].filter((part) => part !== undefined && part !== '').join(' ');
}

const KINDS: ReadonlySet<string> = new Set(['continue', 'accept', 'reject', 'tempfail', 'discard', 'quarantine']);

/**
 * Checks what a hook returned.
 * @throws TypeError for anything that is not a decision (the engine treats that as a filter error)
 */
export function toDecision(result: unknown): Decision {
  if (result === undefined || result === null) return CONTINUE;
  if (typeof result === 'object' && KINDS.has((result as { kind?: unknown }).kind as string)) {
    const decision = result as Decision;
    if ((decision.kind === 'reject' || decision.kind === 'tempfail') && !isReply(decision.reply)) {
      throw new TypeError(`a ${decision.kind} decision needs a reply: use reject() or tempfail()`);
    }
    if (decision.kind === 'quarantine' && typeof decision.reason !== 'string') throw new TypeError('a quarantine decision needs a reason');
    return decision;
  }
  throw new TypeError(`a hook returned ${JSON.stringify(result)}, not a decision (use continueWith(), accept(), reject()...)`);
}

function isReply(value: unknown): value is SmtpReply {
  const reply = value as SmtpReply | undefined;
  return typeof reply?.code === 'string' && Array.isArray(reply.lines);
}
