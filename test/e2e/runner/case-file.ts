/**
 * Case files: one YAML file per case in test/e2e/cases/. A case says what the milter does at which
 * stage, what the SMTP client sends, and what must come out (SMTP replies, deliveries, held
 * messages). Anything may differ per MTA by writing `{ postfix: ..., sendmail: ... }` in its place.
 * docs/e2e.md describes the format; this module loads, checks and resolves it.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { ErrorVerdict, MilterOptions, Verdict } from '../../../src/index.js';
import { MTA_NAMES, type MtaName } from '../harness/mta.js';

/**
 * Generated text: a literal (UTF-8), `{ latin1: "caf\xe9" }` for raw 8-bit bytes that are not UTF-8,
 * a line repeated `times` times, or the concatenation of parts.
 */
export type TextSpec = string | { latin1: string } | { repeat: string; times: number } | TextSpec[];

/** Restricts a step to some calls of its callback. All given fields must match. */
export interface Condition {
  /** envrcpt: the recipient as the MTA sent it, e.g. "<a@example.com>". */
  recipient?: string;
  /** envfrom: the sender as the MTA sent it. */
  sender?: string;
  /** header: the current header; later stages: any header of the message so far. [name, value] */
  header?: [string, string];
  /** 1-based number of the message within the SMTP connection. */
  message?: number;
}

/** One thing the milter does. Exactly one action key, plus an optional `if`. */
export interface Step {
  if?: Condition;
  verdict?: Verdict;
  setReply?: string[];
  addHeader?: [string, string];
  insertHeader?: [number, string, string];
  changeHeader?: [string, number, string];
  deleteHeader?: [string, number];
  addRecipient?: string | [string, string];
  deleteRecipient?: string;
  changeFrom?: string | [string, string];
  replaceBody?: TextSpec;
  quarantine?: string;
  progress?: true;
  /** Waits `ms`, calling progress() every `progressEvery` ms when given. */
  sleep?: { ms: number; progressEvery?: number };
  throw?: string;
}

export const STAGES = ['connect', 'helo', 'envfrom', 'envrcpt', 'data', 'header', 'eoh', 'body', 'eom'] as const;
export type Stage = (typeof STAGES)[number];
export const STEP_ACTIONS = [
  'verdict', 'setReply', 'addHeader', 'insertHeader', 'changeHeader', 'deleteHeader', 'addRecipient', 'deleteRecipient',
  'changeFrom', 'replaceBody', 'quarantine', 'progress', 'sleep', 'throw',
] as const;

/** The milter of a case: steps per stage (a bare verdict is a one-step list). */
export type MilterSpec = Partial<Record<Stage, Step[]>> & {
  /** No milter listens at all (the MTA's behaviour for an unreachable milter). */
  down?: boolean;
  options?: MilterOptions;
  /** MilterServer options. */
  server?: { errorVerdict?: ErrorVerdict; progressInterval?: number; callbackTimeout?: number };
  /** A filter chain in the configuration file's format (`chain:` and its settings) instead of steps. */
  chain?: Record<string, unknown>;
};

/** An expected SMTP reply: "250" (code only), the exact text (lines joined with \n), or "/regex/". */
export type ReplyPattern = string;

export interface RecipientSpec {
  address: string;
  args?: string[];
  reply?: ReplyPattern;
}

/** SMTP AUTH credentials (sent with AUTH PLAIN). */
export interface AuthSpec {
  user: string;
  password: string;
}

export interface MessageSpec {
  /**
   * AUTH PLAIN before this message's MAIL FROM. A successful AUTH holds for the rest of the
   * connection (SMTP has no way back), so the messages after this one are authenticated too.
   */
  auth?: AuthSpec;
  /** Default "235". */
  authReply?: ReplyPattern;
  from: string;
  fromArgs?: string[];
  /** Default "250". When the reply is not 2xx the rest of this message is not sent. */
  mailReply?: ReplyPattern;
  to: RecipientSpec[];
  /** false: stop before DATA (with `rset`, an abandoned transaction). */
  data?: boolean;
  /** Default "354"; DATA is sent only when a recipient was accepted, or when this is given. */
  dataReply?: ReplyPattern;
  /** Header fields in order; Date and Message-ID are added when missing. */
  headers?: [string, string][];
  body?: TextSpec;
  /** Reply to the end of data, default "250". */
  reply?: ReplyPattern;
  /** Send RSET after this message (expects 250). */
  rset?: boolean;
}

export interface SmtpSpec {
  /** Where the client connects from and to: "127.0.0.1" (default) or "::1". */
  client?: '127.0.0.1' | '::1';
  greeting?: ReplyPattern;
  ehloReply?: ReplyPattern;
  messages: MessageSpec[];
}

/** A header expectation: exact values of every field of that name, in order ("/regex/" allowed). */
export type HeaderExpectations = Record<string, string[]>;

export interface MessageExpectation {
  headers?: HeaderExpectations;
  /** Position (0 = first field of the message) of the first field with that name. */
  headerAt?: Record<string, number>;
  body?: TextSpec;
  bodyIncludes?: string[];
}

export interface DeliveryExpectation extends MessageExpectation {
  /** Envelope recipient, without angle brackets. */
  to: string;
  /** Envelope sender, without angle brackets ('' for the null sender). */
  from?: string;
}

export interface HeldExpectation extends MessageExpectation {
  to: string[];
  from?: string;
  /** The reason stored with the message; null where the MTA keeps none (Postfix 3.7). */
  reason?: string | null;
}

export interface ExpectSpec {
  /** Every delivery of the case, exactly (none when omitted). */
  delivered?: DeliveryExpectation[];
  /** Every quarantined message, exactly (none when omitted). */
  held?: HeldExpectation[];
  /** Texts that must appear in the MTA's log. */
  log?: string[];
}

/** A case resolved for one MTA. */
export interface Case {
  name: string;
  file: string;
  description: string;
  milter: MilterSpec;
  smtp: SmtpSpec;
  expect: ExpectSpec;
}

/** A case file as written: still holding per-MTA alternatives. */
export interface CaseSource {
  name: string;
  file: string;
  tree: unknown;
}

/** Raised for a case file that does not follow the format. */
export class CaseFileError extends Error {
  override readonly name = 'CaseFileError';
}

/** Reads every case file of `dir` (sorted by name). */
export function loadCaseSources(dir: string): CaseSource[] {
  return readdirSync(dir)
    .filter((name) => /\.ya?ml$/.test(name))
    .sort()
    .map((name) => {
      const file = join(dir, name);
      let tree: unknown;
      try {
        tree = parseYaml(readFileSync(file, 'utf8'), { merge: true });
      } catch (error) {
        throw new CaseFileError(`${name}: not valid YAML: ${(error as Error).message}`);
      }
      return { name: basename(name).replace(/\.ya?ml$/, ''), file, tree };
    });
}

/** Replaces every `{ postfix: X, sendmail: Y }` by the value for `mta`. */
export function resolveForMta(node: unknown, mta: MtaName, where = ''): unknown {
  if (Array.isArray(node)) return node.map((item, index) => resolveForMta(item, mta, `${where}[${index}]`));
  if (!isPlainObject(node)) return node;
  const keys = Object.keys(node);
  if (keys.length > 0 && keys.every((key) => (MTA_NAMES as readonly string[]).includes(key))) {
    const missing = MTA_NAMES.filter((name) => !keys.includes(name));
    if (missing.length > 0) throw new CaseFileError(`${where || 'top level'}: per-MTA value lacks ${missing.join(', ')}`);
    return resolveForMta(node[mta], mta, where);
  }
  return Object.fromEntries(keys.map((key) => [key, resolveForMta(node[key], mta, where ? `${where}.${key}` : key)]));
}

/** Resolves a case file for one MTA and checks its shape. */
export function resolveCase(source: CaseSource, mta: MtaName): Case {
  const fail = (message: string): never => {
    throw new CaseFileError(`${basename(source.file)}: ${message}`);
  };
  let tree: unknown;
  try {
    tree = resolveForMta(source.tree, mta);
  } catch (error) {
    return fail((error as Error).message);
  }
  if (!isPlainObject(tree)) return fail('the file must hold a mapping');
  checkKeys(tree, ['description', 'milter', 'smtp', 'expect'], 'top level', fail);
  if (typeof tree.description !== 'string' || tree.description.trim() === '') fail('"description" (one line saying what the case shows) is required');
  const milter = checkMilter(tree.milter, fail);
  const smtp = checkSmtp(tree.smtp, fail);
  const expectNode: unknown = tree.expect ?? {};
  if (!isPlainObject(expectNode)) return fail('"expect" must be a mapping');
  checkKeys(expectNode, ['delivered', 'held', 'log'], 'expect', fail);
  const expect = expectNode as ExpectSpec;
  for (const [index, delivery] of (expect.delivered ?? []).entries()) {
    checkKeys(delivery as unknown as Record<string, unknown>, ['to', 'from', 'headers', 'headerAt', 'body', 'bodyIncludes'], `expect.delivered[${index}]`, fail);
    if (typeof delivery.to !== 'string') fail(`expect.delivered[${index}].to must be an address`);
  }
  for (const [index, held] of (expect.held ?? []).entries()) {
    checkKeys(held as unknown as Record<string, unknown>, ['to', 'from', 'reason', 'headers', 'headerAt', 'body', 'bodyIncludes'], `expect.held[${index}]`, fail);
    if (!Array.isArray(held.to)) fail(`expect.held[${index}].to must be a list of addresses`);
  }
  return { name: source.name, file: source.file, description: tree.description as string, milter, smtp, expect };
}

function checkMilter(node: unknown, fail: (message: string) => never): MilterSpec {
  if (!isPlainObject(node)) return fail('"milter" is required (use `down: true` for no milter)');
  checkKeys(node, [...STAGES, 'down', 'options', 'server', 'chain'], 'milter', fail);
  const spec: MilterSpec = {};
  if (node.chain !== undefined) {
    if (!isPlainObject(node.chain)) fail('milter.chain must be a configuration mapping');
    if (STAGES.some((stage) => node[stage] !== undefined)) fail('milter.chain replaces the stage steps: give one or the other');
    spec.chain = node.chain as Record<string, unknown>;
  }
  if (node.down !== undefined) spec.down = node.down === true;
  if (node.options !== undefined) spec.options = node.options as MilterOptions;
  if (node.server !== undefined) {
    if (!isPlainObject(node.server)) fail('milter.server must be a mapping');
    checkKeys(node.server as Record<string, unknown>, ['errorVerdict', 'progressInterval', 'callbackTimeout'], 'milter.server', fail);
    spec.server = node.server as MilterSpec['server'];
  }
  for (const stage of STAGES) {
    const value = node[stage];
    if (value === undefined) continue;
    const steps = typeof value === 'string' ? [{ verdict: value }] : value;
    if (!Array.isArray(steps)) fail(`milter.${stage} must be a verdict or a list of steps`);
    spec[stage] = (steps as unknown[]).map((step, index) => checkStep(step, `milter.${stage}[${index}]`, fail));
  }
  return spec;
}

function checkStep(node: unknown, where: string, fail: (message: string) => never): Step {
  if (!isPlainObject(node)) return fail(`${where} must be a mapping`);
  checkKeys(node, ['if', ...STEP_ACTIONS], where, fail);
  const actions = Object.keys(node).filter((key) => key !== 'if');
  if (actions.length !== 1) fail(`${where} must hold exactly one action (one of ${STEP_ACTIONS.join(', ')}), found ${actions.join(', ') || 'none'}`);
  if (node.if !== undefined) {
    if (!isPlainObject(node.if)) fail(`${where}.if must be a mapping`);
    checkKeys(node.if as Record<string, unknown>, ['recipient', 'sender', 'header', 'message'], `${where}.if`, fail);
  }
  return node as Step;
}

function checkSmtp(node: unknown, fail: (message: string) => never): SmtpSpec {
  if (!isPlainObject(node)) return fail('"smtp" is required');
  checkKeys(node, ['client', 'greeting', 'ehloReply', 'messages'], 'smtp', fail);
  if (node.client !== undefined && node.client !== '127.0.0.1' && node.client !== '::1') fail('smtp.client is "127.0.0.1" or "::1"');
  if (!Array.isArray(node.messages) || node.messages.length === 0) fail('smtp.messages must list at least one message');
  const messages = (node.messages as unknown[]).map((message, index) => {
    const where = `smtp.messages[${index}]`;
    if (!isPlainObject(message)) return fail(`${where} must be a mapping`);
    checkKeys(message, ['auth', 'authReply', 'from', 'fromArgs', 'mailReply', 'to', 'data', 'dataReply', 'headers', 'body', 'reply', 'rset'], where, fail);
    if (message.auth !== undefined) {
      const auth = message.auth;
      if (!isPlainObject(auth) || typeof auth.user !== 'string' || typeof auth.password !== 'string') fail(`${where}.auth must be { user, password }`);
      checkKeys(auth as Record<string, unknown>, ['user', 'password'], `${where}.auth`, fail);
    }
    if (typeof message.from !== 'string') fail(`${where}.from must be an address such as "<a@example.org>"`);
    if (!Array.isArray(message.to)) fail(`${where}.to must be a list of recipients`);
    const to = (message.to as unknown[]).map((rcpt, rcptIndex): RecipientSpec => {
      if (typeof rcpt === 'string') return { address: rcpt };
      if (!isPlainObject(rcpt) || typeof rcpt.address !== 'string') return fail(`${where}.to[${rcptIndex}] must be an address or { address, args, reply }`);
      checkKeys(rcpt, ['address', 'args', 'reply'], `${where}.to[${rcptIndex}]`, fail);
      return rcpt as unknown as RecipientSpec;
    });
    return { ...(message as unknown as MessageSpec), to };
  });
  return { ...(node as unknown as SmtpSpec), messages };
}

function checkKeys(node: Record<string, unknown>, allowed: readonly string[], where: string, fail: (message: string) => never): void {
  const unknown = Object.keys(node).filter((key) => !allowed.includes(key));
  if (unknown.length > 0) fail(`${where}: unknown key(s) ${unknown.join(', ')}; allowed: ${allowed.join(', ')}`);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Renders a {@link TextSpec} as bytes (strings as UTF-8, `latin1` parts byte for byte). */
export function renderBytes(spec: TextSpec): Buffer {
  if (typeof spec === 'string') return Buffer.from(spec, 'utf8');
  if (Array.isArray(spec)) return Buffer.concat(spec.map(renderBytes));
  if ('latin1' in spec) return Buffer.from(spec.latin1, 'latin1');
  return Buffer.from(spec.repeat.repeat(spec.times), 'utf8');
}

/** Converts every line end (LF or CRLF) to `eol`, byte-transparently. */
export function withLineEnds(bytes: Buffer, eol: '\r\n' | '\n'): Buffer {
  return Buffer.from(bytes.toString('latin1').replace(/\r?\n/g, eol), 'latin1');
}
