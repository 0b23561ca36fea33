/**
 * The filter API: one {@link Milter} instance per MTA connection, pymilter's model in TypeScript.
 * Callbacks are optional methods; the ones a filter does not implement are negotiated away, so
 * the MTA never sends those commands. Actions are methods on the instance and are checked
 * against what was negotiated and against the stage.
 */
import { Buffer } from 'node:buffer';
import { Action, byteLength, formatReplyText, hasNul, type Bytes, type Modification } from '../protocol/codec.js';
import type { Logger } from '../log.js';
import { ActionArgumentError, DisabledActionError, StageError } from './errors.js';
import type { MacroStore } from './macros.js';
import type { AddressFamily, CallbackResult, MilterOptions, NegotiateResult, NegotiationOffer, NegotiationRequest } from './types.js';

/** A replacement body, or a part of one. */
export type BodySource = Bytes | AsyncIterable<Uint8Array | string> | Iterable<Uint8Array>;

/** What the session offers to the filter's action methods. @internal */
export interface SessionAccess {
  /** Name of the callback running now. */
  readonly stage: string;
  /** True while the eom callback runs. */
  readonly inEom: boolean;
  readonly version: number;
  readonly actions: number;
  readonly protocol: number;
  readonly maxPayload: number;
  readonly macros: MacroStore;
  readonly logger: Logger;
  readonly id: number;
  /** Raw bytes of the running callback's string arguments (see {@link Milter.raw}). */
  rawArguments(): readonly Buffer[];
  /**
   * Queues a modification for the end-of-message reply.
   * @throws ActionArgumentError if it would exceed the payload size the MTA accepts.
   */
  modify(modification: Modification<Bytes>): void;
  /** Appends to the replacement body. */
  replaceBody(source: BodySource): void;
  /** Sends a progress packet now. */
  progress(): void;
  /** Stores a custom reply for the next reject/tempfail. */
  setReply(text: string): void;
}

/**
 * Registered symbols (`Symbol.for`), so that a filter built on another copy of milterkit (the
 * command line and the filter module may load two) is recognised and served by this one.
 * @internal
 */
export const sessionAccess: unique symbol = Symbol.for('milterkit.session');
/** Marks the {@link Milter} class, its subclasses and their instances, across copies. @internal */
export const milterBrand: unique symbol = Symbol.for('milterkit.milter');

const NO_ARGUMENTS: readonly Buffer[] = [];
const noSession: SessionAccess = new Proxy({} as SessionAccess, {
  get(_target, key) {
    if (key === 'stage') return 'no connection';
    throw new StageError(String(key), 'no connection');
  },
});

/**
 * Base class of a filter. Subclass it, implement the callbacks you need, and pass the class to a
 * {@link MilterServer} (or the test kit). A new instance serves each MTA connection.
 *
 * @example
 * ```ts
 * class Tagger extends Milter {
 *   static override options: MilterOptions = { actions: ['addHeader'] };
 *   override eom() {
 *     this.addHeader('X-Tagged', 'yes');
 *     return 'continue';
 *   }
 * }
 * ```
 */
export class Milter {
  /** Static options: required actions, no-reply stages, macro lists, SKIP, RCPT_REJ, HDR_LEADSPC. */
  static options: MilterOptions = {};

  /** @internal */
  static readonly [milterBrand] = true;

  /** @internal */
  [sessionAccess]: SessionAccess = noSession;

  /**
   * Raw bytes of the current command's string arguments, for filters that need them exactly:
   * connect `[hostname, address]`, helo `[name]`, envfrom/envrcpt the argv, header `[name, value]`,
   * unknown `[line]`. The text arguments of callbacks are these bytes read as UTF-8. Valid while
   * the callback runs (until its promise settles); empty outside a callback.
   */
  get raw(): readonly Buffer[] {
    const session = this[sessionAccess];
    return session === noSession ? NO_ARGUMENTS : session.rawArguments();
  }

  /** Option negotiation; may adjust the request, return `'all-options'`, or `'reject'` the MTA. */
  negotiate?(offer: NegotiationOffer, request: NegotiationRequest): NegotiateResult | Promise<NegotiateResult>;
  /** The SMTP client connected. `address` is bare (no `IPv6:` prefix, no brackets). */
  connect?(hostname: string, family: AddressFamily, address: string | undefined, port: number | undefined): CallbackResult;
  /** HELO or EHLO. */
  helo?(name: string): CallbackResult;
  /** MAIL FROM: the sender as the client wrote it (usually in angle brackets) and the ESMTP arguments. */
  envfrom?(sender: string, args: string[]): CallbackResult;
  /** RCPT TO: one recipient and its ESMTP arguments. */
  envrcpt?(recipient: string, args: string[]): CallbackResult;
  /** DATA (protocol version 4 and later). */
  data?(): CallbackResult;
  /** One header; folded lines are joined with LF. */
  header?(name: string, value: string): CallbackResult;
  /** End of headers. */
  eoh?(): CallbackResult;
  /** One body chunk (at most 64 KiB, CRLF line ends, any bytes). */
  body?(chunk: Buffer): CallbackResult;
  /** End of message: the only stage where the message can be modified. */
  eom?(): CallbackResult;
  /** The MTA abandoned the current message (RSET, new HELO, end of transaction). */
  abort?(): void | Promise<void>;
  /** The connection ended. */
  close?(): void | Promise<void>;
  /** An SMTP command the MTA does not know. */
  unknown?(command: string): CallbackResult;

  /** Connection number, for logs. */
  get connectionId(): number {
    return this[sessionAccess].id;
  }

  /** Logger of this connection. */
  get log(): Logger {
    return this[sessionAccess].logger;
  }

  /** Negotiated protocol version, action flags and protocol flags. */
  get negotiated(): { version: number; actions: number; protocol: number } {
    const s = this[sessionAccess];
    return { version: s.version, actions: s.actions, protocol: s.protocol };
  }

  /** Value of an MTA macro (`'i'` and `'{i}'` alike), or undefined. pymilter's `getsymval`. */
  macro(name: string): string | undefined {
    return this[sessionAccess].macros.get(name);
  }

  /** Raw bytes of an MTA macro. */
  macroRaw(name: string): Buffer | undefined {
    return this[sessionAccess].macros.getRaw(name);
  }

  /** Every macro currently defined. */
  macros(): Record<string, string> {
    return this[sessionAccess].macros.all();
  }

  /**
   * Sets the SMTP reply for the next `reject` (5xx) or `tempfail` (4xx) verdict, replacing the
   * MTA's default text. `%` is taken literally. A code whose class does not match the verdict is
   * ignored with a warning, as libmilter does.
   * @throws ReplyCodeError if the code, enhanced code or lines break libmilter's rules.
   */
  setReply(code: string, xcode?: string, ...lines: string[]): void {
    this[sessionAccess].setReply(formatReplyText(code, xcode, lines));
  }

  /**
   * Appends a header at the end of the headers. Line ends in `value` are sent as LF (the MTA adds
   * the CRs); a line that does not start with a space or tab is folded with a tab, so a value can
   * never end the header and start another.
   */
  addHeader(name: Bytes, value: Bytes): void {
    const s = this.headerEdit('addHeader', Action.ADDHDRS, name);
    s.modify({ type: 'addHeader', name, value: foldHeaderValue('addHeader', value) });
  }

  /** Inserts a header at `index` (0 = first) among all headers; an index past the end appends. Values are folded as by {@link addHeader}. */
  insertHeader(index: number, name: Bytes, value: Bytes): void {
    checkIndex('insertHeader', index, 0);
    const s = this.headerEdit('insertHeader', Action.ADDHDRS, name);
    s.modify({ type: 'insertHeader', index, name, value: foldHeaderValue('insertHeader', value) });
  }

  /**
   * Changes the `index`-th (1-based) header called `name` (adds it when there is none). An empty
   * value keeps the header with an empty value; use {@link deleteHeader} to remove it. Values
   * are folded as by {@link addHeader}.
   */
  changeHeader(name: Bytes, index: number, value: Bytes): void {
    checkIndex('changeHeader', index, 1);
    const s = this.headerEdit('changeHeader', Action.CHGHDRS, name);
    const folded = foldHeaderValue('changeHeader', value);
    // Both MTAs read an empty value as "delete": a lone space is a header whose value is empty.
    s.modify({ type: 'changeHeader', index, name, value: byteLength(folded) === 0 ? ' ' : folded });
  }

  /**
   * Deletes the `index`-th (1-based) header called `name`. When deleting several headers of one
   * name, delete the highest index first: MTAs disagree on whether indexes shift.
   */
  deleteHeader(name: Bytes, index: number): void {
    checkIndex('deleteHeader', index, 1);
    this.headerEdit('deleteHeader', Action.CHGHDRS, name).modify({ type: 'changeHeader', index, name, value: '' });
  }

  /**
   * Adds a recipient, optionally with ESMTP arguments: one string (`'NOTIFY=NEVER ORCPT=...'`)
   * or a list of them (`['NOTIFY=NEVER', 'ORCPT=...']`, pymilter's form).
   */
  addRecipient(recipient: Bytes, args?: EsmtpArguments): void {
    const s = this.eomSession('addRecipient');
    checkString('addRecipient', 'recipient', recipient, false);
    const joined = esmtpArguments('addRecipient', args);
    if (joined !== undefined) {
      requireAction(s, 'addRecipient with ESMTP arguments', Action.ADDRCPT_PAR);
      s.modify({ type: 'addRcptPar', rcpt: recipient, args: joined });
    } else if (s.actions & Action.ADDRCPT) {
      s.modify({ type: 'addRcpt', rcpt: recipient });
    } else {
      requireAction(s, 'addRecipient', Action.ADDRCPT_PAR);
      s.modify({ type: 'addRcptPar', rcpt: recipient });
    }
  }

  /** Removes a recipient, given in the form the MTA sent it. */
  deleteRecipient(recipient: Bytes): void {
    const s = this.eomSession('deleteRecipient');
    checkString('deleteRecipient', 'recipient', recipient, false);
    requireAction(s, 'deleteRecipient', Action.DELRCPT);
    s.modify({ type: 'delRcpt', rcpt: recipient });
  }

  /** Changes the envelope sender, optionally with ESMTP arguments (a string or a list, as for {@link addRecipient}). */
  changeFrom(sender: Bytes, args?: EsmtpArguments): void {
    const s = this.eomSession('changeFrom');
    checkString('changeFrom', 'sender', sender, true);
    const joined = esmtpArguments('changeFrom', args);
    requireAction(s, 'changeFrom', Action.CHGFROM);
    s.modify(joined === undefined ? { type: 'changeFrom', sender } : { type: 'changeFrom', sender, args: joined });
  }

  /**
   * Replaces the message body. Call once with the whole body, or several times to append parts;
   * a stream or async iterable is read as the reply is sent. Use CRLF line ends. The MTA receives
   * the new body in chunks of at most 65535 bytes.
   */
  replaceBody(body: BodySource): void {
    const s = this.eomSession('replaceBody');
    requireAction(s, 'replaceBody', Action.CHGBODY);
    s.replaceBody(body);
  }

  /** Puts the message in the MTA's quarantine (Postfix: hold queue) with a reason. */
  quarantine(reason: Bytes): void {
    const s = this.eomSession('quarantine');
    checkString('quarantine', 'reason', reason, false);
    requireAction(s, 'quarantine', Action.QUARANTINE);
    s.modify({ type: 'quarantine', reason });
  }

  /** Tells the MTA to keep waiting for a slow end-of-message callback. */
  progress(): void {
    this.eomSession('progress').progress();
  }

  private eomSession(action: string): SessionAccess {
    const s = this[sessionAccess];
    if (!s.inEom) throw new StageError(action, s.stage);
    return s;
  }

  /** The session, once the name and the negotiated action are checked. */
  private headerEdit(action: string, flag: number, name: Bytes): SessionAccess {
    const s = this.eomSession(action);
    checkString(action, 'name', name, false);
    if (typeof name === 'string' ? /[:\r\n\s]/.test(name) : name.some((b) => b === 0x3a || b <= 0x20 || b === 0x7f)) {
      throw new ActionArgumentError(`${action}: header name "${name.toString()}" holds a colon, space or control character`);
    }
    requireAction(s, action, flag);
    return s;
  }
}

function requireAction(s: SessionAccess, action: string, flag: number): void {
  if ((s.actions & flag) === 0) {
    throw new DisabledActionError(action, 'it was not negotiated (declare it in options.actions, or the MTA does not offer it)');
  }
}

function checkIndex(action: string, index: number, min: number): void {
  if (!Number.isInteger(index) || index < min || index > 0xffffffff) {
    throw new ActionArgumentError(`${action}: index must be an integer >= ${min}, got ${index}`);
  }
}

function checkString(action: string, what: string, value: Bytes, emptyAllowed: boolean): void {
  if (hasNul(value)) throw new ActionArgumentError(`${action}: ${what} holds a NUL byte`);
  if (!emptyAllowed && byteLength(value) === 0) throw new ActionArgumentError(`${action}: ${what} is empty`);
}

/** ESMTP arguments of an added recipient or a changed sender: one string, or one string per argument. */
export type EsmtpArguments = Bytes | readonly Bytes[];

const SPACE = Buffer.from(' ');

/** Joins ESMTP arguments into the one string the protocol carries; undefined when there are none. */
function esmtpArguments(action: string, args: EsmtpArguments | undefined): Bytes | undefined {
  if (args === undefined) return undefined;
  if (typeof args === 'string' || args instanceof Uint8Array) {
    checkString(action, 'args', args, true);
    if (/[\r\n]/.test(typeof args === 'string' ? args : Buffer.from(args).toString('latin1'))) throw new ActionArgumentError(`${action}: args hold a line break`);
    return byteLength(args) > 0 ? args : undefined;
  }
  if (!Array.isArray(args)) throw new ActionArgumentError(`${action}: args must be a string, bytes or a list of them, got ${typeof args}`);
  const parts = args.map((arg: unknown, i) => {
    if (typeof arg !== 'string' && !(arg instanceof Uint8Array)) throw new ActionArgumentError(`${action}: args[${i}] must be a string or bytes, got ${typeof arg}`);
    const text = typeof arg === 'string' ? arg : Buffer.from(arg).toString('latin1');
    if (text.length === 0 || /[\s\0]/.test(text)) throw new ActionArgumentError(`${action}: args[${i}] ${JSON.stringify(text)} must be one non-empty ESMTP argument without spaces or control characters`);
    return typeof arg === 'string' ? Buffer.from(arg, 'utf8') : Buffer.from(arg);
  });
  if (parts.length === 0) return undefined;
  return Buffer.concat(parts.flatMap((part, i) => (i === 0 ? [part] : [SPACE, part])));
}

/**
 * A header value as the MTA must get it: line ends as LF (the MTA adds the CRs; Postfix would
 * double a CR we send), empty lines dropped and every further line starting with a space or tab,
 * so that no line of the value can be read as a header of its own or as the end of the headers.
 */
function foldHeaderValue(action: string, value: Bytes): Bytes {
  if (hasNul(value)) throw new ActionArgumentError(`${action}: value holds a NUL byte`);
  const text = typeof value === 'string' ? value : Buffer.from(value).toString('latin1');
  if (!/[\r\n]/.test(text)) return value;
  const lines = text.split(/\r\n?|\n/);
  const folded = lines
    .filter((line, i) => i === 0 || line.length > 0)
    .map((line, i) => (i === 0 || line.startsWith(' ') || line.startsWith('\t') ? line : `\t${line}`))
    .join('\n');
  return typeof value === 'string' ? folded : Buffer.from(folded, 'latin1');
}

Object.defineProperty(Milter.prototype, milterBrand, { value: true });

/** True for {@link Milter} and its subclasses, from this copy of milterkit or another. */
export function isMilterClass(value: unknown): value is typeof Milter {
  return typeof value === 'function' && (value === Milter || value.prototype instanceof Milter || (value as unknown as Record<symbol, unknown>)[milterBrand] === true);
}

/** True for an instance of a {@link Milter} subclass, from this copy of milterkit or another. */
export function isMilterInstance(value: unknown): value is Milter {
  return value instanceof Milter || (typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[milterBrand] === true);
}

/** Action flags by action name. */
export const actionBits: Readonly<Record<string, number>> = {
  addHeader: Action.ADDHDRS,
  insertHeader: Action.ADDHDRS,
  changeHeader: Action.CHGHDRS,
  deleteHeader: Action.CHGHDRS,
  replaceBody: Action.CHGBODY,
  addRecipient: Action.ADDRCPT,
  addRecipientWithArgs: Action.ADDRCPT_PAR,
  deleteRecipient: Action.DELRCPT,
  changeFrom: Action.CHGFROM,
  quarantine: Action.QUARANTINE,
};
