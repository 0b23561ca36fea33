/**
 * The Courier front-end of the filter API: runs a chain over one message at the end of DATA, as
 * Courier hands it to global filters, with every hook in order (connect, sender, each recipient,
 * message). The transaction comes from the control files; edits are written into the data and
 * control files. Where Courier cannot do what a milter MTA does:
 *
 * - a refused recipient cannot be refused alone after DATA: a permanent refusal removes it (marked
 *   delivered, logged) when others remain, and rejects the message when none do; a temporary one
 *   makes the whole message temporarily refused, so that no recipient loses mail;
 * - `discard` removes every recipient and accepts; `quarantine` (Courier has no hold queue)
 *   refuses the message temporarily, so that nothing is accepted by accident;
 * - the envelope sender cannot be changed: `changeSender` throws inside the hook, so that the
 *   hook fails and its filter's `onError` applies (tempfail by default, reject, or continue
 *   without that hook's edits), logged with the filter and the reason.
 *
 * The daemon runs chains this way through the module kind of `courier-modules.ts`; the offline
 * `courier` profile through `courier-offline.ts`.
 *
 * @packageDocumentation
 */
import { isAscii } from 'node:buffer';
import * as control from '../courier/helpers/control.js';
import { CourierMessage, type HeaderField as CourierHeaderField } from '../courier/helpers/message.js';
import type { CourierLogger } from '../courier/logging.js';
import type { FilterRequest } from '../courier/request.js';
import type { Chain, MessageRun } from '../filter-api/chain.js';
import type { Decision, SmtpReply } from '../filter-api/decisions.js';
import type { Draft, DraftRecipient, UnsupportedEdits } from '../filter-api/draft.js';
import type { ClientInfo, CourierConfigView, RawMtaData, Recipient } from '../filter-api/transaction.js';

/** How the outcome is told to Courier. */
export interface CourierRunOptions {
  readonly logger: CourierLogger;
  /** Reply when a filter accepts: `200 …` (Courier's later filters still run) or `050 …` (they do not). */
  readonly acceptReply?: string;
  /** Courier's configuration, for filters that read it (`tx.raw.courier`). */
  readonly courier?: CourierConfigView;
  /** Aborts the running hooks (the daemon's deadline, shutdown); nothing is written after it fires. */
  readonly signal?: AbortSignal;
  /** The message's control files when the caller has read them already (the daemon's chain has). */
  readonly readControlFiles?: () => Promise<readonly control.ControlFile[]>;
  /**
   * Takes what each filter's hooks did (`filters`) for the caller's own line about the message;
   * with it, the caller logs the message (the chain is loaded with `logMessages: false`).
   */
  readonly note?: (fields: { filters: string }) => void;
}

/** Edits Courier cannot make: global filters run after DATA. */
const UNSUPPORTED_EDITS: UnsupportedEdits = { sender: 'Courier runs global filters after DATA, when the envelope sender can no longer be changed' };

const NOTIFY_LETTERS: Readonly<Record<string, string>> = { S: 'SUCCESS', F: 'FAILURE', D: 'DELAY', N: 'NEVER' };

/** ESMTP parameters of a control-file recipient. */
export function recipientArgs(data: control.RecipientData): string[] {
  // Most recipients carry neither: no arrays built for them.
  if (data.dsn === '' && data.orcpt === '') return [];
  const args: string[] = [];
  const notify = [...data.dsn].map((letter) => NOTIFY_LETTERS[letter]).filter((word) => word !== undefined);
  if (notify.length > 0) args.push(`NOTIFY=${notify.join(',')}`);
  if (data.orcpt !== '') args.push(`ORCPT=${data.orcpt}`);
  return args;
}

/** Control-file recipient data from ESMTP parameters. */
function recipientData(recipient: Recipient): control.RecipientData {
  let dsn = '';
  let orcpt = '';
  for (const arg of recipient.args) {
    const [key, value = ''] = arg.split('=', 2) as [string, string?];
    if (key.toUpperCase() === 'NOTIFY') dsn = value.split(',').map((word) => word.trim().toUpperCase()[0] ?? '').join('');
    else if (key.toUpperCase() === 'ORCPT') orcpt = value;
  }
  return { address: recipient.address, orcpt, dsn };
}

function clientOf(data: control.ControlData, address: string | undefined): ClientInfo {
  // Received-From-MTA: "dns; HELO (HOST [ADDRESS])".
  const helo = /^dns;\s*(\S+)/.exec(data.receivedFromMta ?? '')?.[1];
  const hostname = data.environment.TCPREMOTEHOST;
  return { ...(address ? { address } : {}), ...(hostname ? { hostname } : {}), ...(helo ? { helo } : {}) };
}

function replyText(reply: SmtpReply): string {
  const prefix = reply.xcode ? `${reply.xcode} ` : '';
  const lines = reply.lines.length > 0 ? reply.lines : [''];
  return lines.map((line, i) => `${reply.code}${i === lines.length - 1 ? ' ' : '-'}${prefix}${line}`).join('\n');
}

function decisionReply(decision: Decision & { kind: 'reject' | 'tempfail' }): string {
  return replyText(decision.reply);
}

/** Unfolded Courier values carry no line ends; bodies use LF on disk and CRLF for filters. */
export function toCrlf(bytes: Buffer): Buffer {
  let bareLineFeeds = 0;
  for (let at = bytes.indexOf(0x0a); at !== -1; at = bytes.indexOf(0x0a, at + 1)) if (at === 0 || bytes[at - 1] !== 0x0d) bareLineFeeds++;
  if (bareLineFeeds === 0) return bytes;
  // Copied line by line into a buffer of the final size, not through a string and a regular expression.
  const crlf = Buffer.allocUnsafe(bytes.length + bareLineFeeds);
  let copied = 0;
  let written = 0;
  for (let at = bytes.indexOf(0x0a); at !== -1; at = bytes.indexOf(0x0a, at + 1)) {
    if (at > 0 && bytes[at - 1] === 0x0d) continue;
    written += bytes.copy(crlf, written, copied, at);
    crlf[written++] = 0x0d;
    copied = at;
  }
  bytes.copy(crlf, written, copied);
  return crlf;
}

/**
 * Runs `chain` over one Courier message and returns the module reply: `''` (no decision), the
 * accept reply, or a `4xx`/`5xx` refusal. Edits are saved before an accepting reply is returned.
 */
export async function runChainOnCourierMessage(chain: Chain, request: FilterRequest, options: CourierRunOptions): Promise<string> {
  const { dataPath, controlPaths } = request;
  const files = await (options.readControlFiles?.() ?? control.readControlFiles(controlPaths));
  const data = control.controlDataOf(files);
  const pending = control.undeliveredRecipients(files);
  const raw: RawMtaData = { frontEnd: 'courier', controlPaths, dataPath, environment: data.environment, ...(options.courier ? { courier: options.courier } : {}) };
  const connection = chain.connection(clientOf(data, control.sendersIpOf(files, data)), raw, UNSUPPORTED_EDITS);
  const onAbort = (): void => connection.close();
  options.signal?.addEventListener('abort', onAbort, { once: true });
  let ran: MessageRun | undefined;
  try {
    const run = connection.message({
      sender: { address: data.sender, args: [] },
      ...(data.authenticatedUser ? { auth: { user: data.authenticatedUser } } : {}),
      ...(data.messageId ? { queueId: data.messageId } : {}),
      raw,
    });
    ran = run;
    // Nothing is written and no reply given once the daemon has given up on this run.
    const checked = (): void => options.signal?.throwIfAborted();
    const answer = (reply: string): string => {
      checked();
      return reply;
    };
    const discard = (): Promise<string> => {
      checked();
      return discardAll(files, pending, options);
    };
    const started = await run.start();
    if (started.kind === 'final') return started.decision.kind === 'discard' ? discard() : answer(decisionReply(started.decision));

    const refused: Array<{ recipient: control.ControlRecipient; decision: Decision & { kind: 'reject' | 'tempfail' }; by: string }> = [];
    for (const recipient of pending) {
      const outcome = await run.recipient({ address: recipient.address, args: recipientArgs(recipient) }, recipient);
      if (outcome.kind === 'final') return outcome.decision.kind === 'discard' ? discard() : answer(decisionReply(outcome.decision));
      if (outcome.kind === 'refused') refused.push({ recipient, decision: outcome.decision, by: outcome.by });
    }
    // After DATA a recipient cannot be told "later" alone: a temporary refusal holds the whole message back.
    const temporary = refused.find((r) => r.decision.kind === 'tempfail');
    if (temporary) return answer(decisionReply(temporary.decision));
    if (pending.length > 0 && refused.length === pending.length) return answer(decisionReply(refused[refused.length - 1]!.decision));

    const message = await CourierMessage.open(dataPath, { maxBytes: chain.limits.maxBodyBytes, signal: options.signal });
    const received = filterVisibleFields(message);
    const outcome = await run.message({ headers: received.map(({ name, value }) => ({ name, value })), body: toCrlf(message.bodyBytes), messagePath: dataPath });
    if (outcome.action === 'reject' || outcome.action === 'tempfail') return answer(replyText(outcome.reply!));
    if (outcome.action === 'discard') return discard();
    if (outcome.quarantine !== undefined) {
      options.logger.error({ event: 'quarantine-unsupported', by: outcome.by, reason: outcome.quarantine }, `Courier has no quarantine: "${outcome.by}" asked to hold the message (${outcome.quarantine}); refused temporarily`);
      return answer(replyText(chain.replies.tempfail));
    }
    checked();
    // One append per control file for each reason, however many recipients go.
    const reasons = new Map<string, control.ControlRecipient[]>();
    for (const { recipient, decision, by } of refused) {
      const reason = `refused by ${by}: ${decision.reply.lines.join(' ')}`;
      reasons.set(reason, [...(reasons.get(reason) ?? []), recipient]);
    }
    for (const [reason, recipients] of reasons) await control.removeRecipients(files, recipients, { logger: options.logger, reason, signal: options.signal });
    const refusedSet = new Set(refused.map((r) => r.recipient));
    await applyDraft(outcome.draft, message, files, pending.filter((r) => !refusedSet.has(r)), controlPaths, options);
    return answer(outcome.by !== undefined ? (options.acceptReply ?? '200 Ok') : '');
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
    connection.close();
    if (ran !== undefined) options.note?.({ filters: ran.trace });
  }
}

async function discardAll(files: readonly control.ControlFile[], pending: readonly control.ControlRecipient[], options: CourierRunOptions): Promise<string> {
  await control.removeRecipients(files, pending, { logger: options.logger, reason: 'discarded by mail filter', signal: options.signal });
  return options.acceptReply ?? '200 Ok';
}

/** Writes the chain's edits into the data and control files; `pending` are the recipients the chain saw. */
async function applyDraft(
  draft: Draft,
  message: CourierMessage,
  files: readonly control.ControlFile[],
  pending: readonly control.ControlRecipient[],
  controlPaths: readonly string[],
  options: CourierRunOptions,
): Promise<void> {
  if (draft.headers !== undefined) applyHeaders(draft, message);
  if (draft.body !== undefined) message.replaceBody(draft.body);
  await message.save();
  if (draft.body !== undefined && hasEightBitBytes(draft.body)) await control.markEightBitBody(files, { signal: options.signal });
  const kept = new Set(draft.recipients.filter((r: DraftRecipient) => r.received).map((r) => r.key));
  const removed = pending.filter((recipient) => !kept.has(recipient));
  if (removed.length > 0) await control.removeRecipients(files, removed, { logger: options.logger, reason: 'removed by mail filter', signal: options.signal });
  for (const recipient of draft.recipients) if (!recipient.received) await control.addRecipient(controlPaths, recipientData(recipient), { signal: options.signal });
}

function hasEightBitBytes(body: Buffer | string): boolean {
  return !isAscii(typeof body === 'string' ? Buffer.from(body, 'utf8') : body);
}

/**
 * Whether the data file starts with Courier's own `Received:` field, which Courier adds before
 * running filters. Like the milter MTAs' own field, filters never see it and nothing goes above it.
 */
function hasOwnReceived(message: CourierMessage): boolean {
  return message.headers()[0]?.name.toLowerCase() === 'received';
}

/** The fields filters see: the named ones, Courier's own `Received:` left out. */
function filterVisibleFields(message: CourierMessage): CourierHeaderField[] {
  return message
    .headers()
    .slice(hasOwnReceived(message) ? 1 : 0)
    .filter((field) => field.name !== '');
}

/**
 * Turns the header model into data-file edits: changes and deletes by occurrence in the header as
 * received (deletes highest first), then new fields right below the field before them.
 */
function applyHeaders(draft: Draft, message: CourierMessage): void {
  const own = hasOwnReceived(message) ? 1 : 0;
  const all = message.headers();
  const named = filterVisibleFields(message);
  const final = draft.headers!.fields;
  // Most messages pass with the header as received: nothing to plan.
  if (final.length === named.length && final.every((field, position) => field.received === position && !field.changed)) return;
  const occurrence = (position: number): number => named.slice(0, position + 1).filter((f) => f.name.toLowerCase() === named[position]!.name.toLowerCase()).length;
  const kept = new Set(final.flatMap((field) => (field.received === undefined ? [] : [field.received])));
  // Occurrences count Courier's own field too when a filter's field has the same name.
  const shift = (name: string): number => (own && all[0]!.name.toLowerCase() === name.toLowerCase() ? 1 : 0);
  for (const field of final) {
    if (field.received !== undefined && field.changed) {
      const name = named[field.received]!.name;
      message.changeHeader(name, occurrence(field.received) + shift(name), field.value, { raw8bit: true });
    }
  }
  // A mirror of the data file's field list: received fields by position, other lines, new fields.
  const mirror: Array<number | object> = [];
  let position = 0;
  for (const [index, field] of all.entries()) mirror.push(field.name === '' || index < own ? {} : position++);
  for (let k = named.length - 1; k >= 0; k--) {
    if (kept.has(k)) continue;
    message.deleteHeader(named[k]!.name, occurrence(k) + shift(named[k]!.name));
    mirror.splice(mirror.indexOf(k), 1);
  }
  let previous: number | object | undefined;
  for (const field of final) {
    const key: number | object = field.received ?? field;
    if (field.received === undefined) {
      const at = previous === undefined ? own : mirror.indexOf(previous) + 1;
      message.insertHeader(at, field.name, field.value, { raw8bit: true });
      mirror.splice(at, 0, key);
    }
    previous = key;
  }
}
