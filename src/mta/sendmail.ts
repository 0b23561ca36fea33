/**
 * Sendmail 8.17 (Debian 12) as a milter client, from `sendmail/milter.c`, `srvrsmtp.c` and the
 * m4 defaults in `cf/m4/cfhead.m4` (milter-protocol.md §4-§7).
 */
import { randomBytes } from 'node:crypto';
import type { StageReply } from '../client/connection.js';
import { DEFAULT_OFFER } from '../client/negotiation.js';
import { Limits } from '../protocol/index.js';
import { classifyClientAddress } from './client-address.js';
import type { HeaderEntry } from './header-edits.js';
import { headerValue } from './message.js';
import { envelopeMacro, rfc5322Date, type MtaProfile, type MtaState, type SmtpOutcome } from './profile.js';
import type { SmtpStage } from '../protocol/codec.js';
import { sendmailDeliveredFields } from './sendmail-headers.js';

const TEMPFAIL = '451 4.3.2 Please try again later';

/** Sendmail's default texts for a plain REJECT, per command. */
function rejectText(stage: SmtpStage): string {
  switch (stage) {
    case 'connect':
      return '554 Command rejected';
    case 'helo':
      return '550 Command rejected';
    // Headers, end of header and body reach milters only once the whole message is in: a reject
    // there is the answer to the end of data, as at end of message.
    case 'header':
    case 'eoh':
    case 'body':
    case 'eom':
      return '554 5.7.1 Command rejected';
    default:
      return '550 5.7.1 Command rejected';
  }
}

/**
 * Sendmail's check of a REPLYCODE text: it must start `[45]dd` and is used as a printf format, so a
 * lone `%` voids it (the default text is used instead) and `%%` prints `%`.
 */
function sendmailReplyText(text: string): string | undefined {
  if (!/^[45][0-9][0-9]/.test(text)) return undefined;
  if (text.replace(/%%/g, '').includes('%')) return undefined;
  return text.replace(/%%/g, '%');
}

/** Reply codes whose text Sendmail starts with the address of the command (`<a@b>... `), at MAIL and RCPT. */
const ADDRESSED_CODES: ReadonlySet<string> = new Set(['450', '550', '553']);

/**
 * A reply to MAIL or RCPT as Sendmail words it: for a 450, 550 or 553, the address and `... `
 * follow the codes on the first line, and a single line without an enhanced code gets `X.0.0`.
 */
function addressedReply(text: string, address: string): string {
  const code = text.slice(0, 3);
  if (!ADDRESSED_CODES.has(code)) return text;
  const multiLine = text.includes('\r\n');
  const codes = /^\d{3}[ -](?:[245]\.\d{1,3}\.\d{1,3} )?/.exec(text)![0];
  const enhanced = codes.length > 4 || multiLine ? '' : `${code[0]}.0.0 `;
  return `${codes}${enhanced}${address}... ${text.slice(codes.length)}`;
}

/**
 * The entries Sendmail's header list starts with: the `H` lines of an m4-generated configuration,
 * in order. Apart from `Received:`, each is conditional on a mailer flag (`?P?` Return-Path,
 * `?D?` dates, `?F?` From, `?x?` Full-Name, `?M?` Message-Id) and left out of the delivered copy;
 * they still count for INSHEADER indexes.
 */
export const DEFAULT_FIELDS_BEFORE_RECEIVED = ['Return-Path'];
export const DEFAULT_FIELDS_AFTER_RECEIVED = ['Resent-Date', 'Date', 'Resent-From', 'From', 'Full-Name', 'Resent-Message-Id', 'Message-Id'];

function hiddenDefault(name: string): HeaderEntry {
  return { name, value: '', origin: 'mta', hidden: true };
}

/** IPv6 addresses carry Sendmail's `IPv6:` prefix, in CONNECT and in macros alike. */
function sendmailAddress(state: MtaState): string | undefined {
  const { family, address } = classifyClientAddress(state.client.address);
  return family === 'inet6' ? `IPv6:${address}` : address;
}

/** The outcome of a reject or tempfail, before the address is added to MAIL and RCPT replies. */
function sendmailOutcome(stage: SmtpStage, reply: StageReply): SmtpOutcome {
  if (reply.verdict !== 'reject' && reply.verdict !== 'tempfail') return { verdict: 'accept', reply: '' };
  if (reply.replyText !== undefined) {
    const text = sendmailReplyText(reply.replyText);
    // At CONNECT the text is ignored; its class still decides.
    if (text !== undefined && stage !== 'connect') return { verdict: text[0] === '4' ? 'tempfail' : 'reject', reply: text };
    if (text === undefined) return { verdict: 'reject', reply: rejectText(stage) };
  }
  return reply.verdict === 'reject' ? { verdict: 'reject', reply: rejectText(stage) } : { verdict: 'tempfail', reply: TEMPFAIL };
}

/** Security strength factor of an AUTH without a security layer (PLAIN, LOGIN; no TLS). */
const AUTH_SSF = '0';

const ALPHANUMERIC = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwx';

/** Sendmail with an m4-generated configuration: default `Milter.macros.*`, `T=C:5m;S:10s;R:10s;E:5m`, no `F=` flag. */
export const sendmailProfile: MtaProfile = {
  name: 'sendmail',
  product: 'Sendmail 8.17.1.9',
  client: {
    offer: { ...DEFAULT_OFFER },
    // R:10s for each reply packet, at end of message too; E:5m for the whole end of message, which PROGRESS does not extend.
    timeouts: { command: 10_000, content: 10_000, endOfMessage: 10_000, endOfMessageTotal: 300_000, progressRestartsEndOfMessage: true },
    connectTimeout: 300_000,
    leniency: { progressAnyStage: false, quarantineAnyStage: false, skipAnyStage: false, acceptShutdown: false },
    negotiationChecks: { allowHigherVersion: true, ignoreUnofferedProtocol: false },
    maxCommandPayload: Limits.MAX_DATA_SIZE,
  },
  macroLists: {
    connect: ['j', '_', '{daemon_name}', '{if_name}', '{if_addr}'],
    helo: ['{tls_version}', '{cipher}', '{cipher_bits}', '{cert_subject}', '{cert_issuer}'],
    envfrom: ['i', '{auth_type}', '{auth_authen}', '{auth_ssf}', '{auth_author}', '{mail_mailer}', '{mail_host}', '{mail_addr}'],
    envrcpt: ['{rcpt_mailer}', '{rcpt_host}', '{rcpt_addr}'],
    data: [],
    eoh: [],
    eom: ['{msg_id}'],
  },
  macroListFor(stage, requested) {
    // 8.17/8.18 quirk: the milter's own EOM list is used only if it also sent an EOH list.
    const own = stage === 'eom' && requested.eoh === undefined ? undefined : requested[stage];
    const list = own ?? this.macroLists[stage];
    // A D packet is written once a list is configured, even if no macro in it has a value.
    return list.length > 0 ? list : null;
  },
  contentMacros: false,
  macroValue(name, state) {
    const shared = envelopeMacro(name, state, 'esmtp');
    if (shared !== null) return shared;
    const address = sendmailAddress(state);
    const clientName = state.client.hostname ?? `[${address ?? 'unknown'}]`;
    switch (name) {
      case 'j':
      case 'if_name':
        return state.hostname;
      case 'daemon_name':
        return 'MTA';
      case 'if_addr':
      case 'daemon_addr':
        return state.serverAddress;
      case 'daemon_port':
        return String(state.serverPort);
      case 'v':
        return '8.17.1.9';
      case '_':
        return `${clientName} [${address ?? 'unknown'}]`;
      case 'client_addr':
        return address;
      case 'client_name':
        return clientName;
      case 'auth_ssf':
        return state.auth === undefined ? undefined : AUTH_SSF;
      case 'msg_id':
        return state.message === undefined ? undefined : headerValue(state.message, 'Message-Id')?.trim();
      default:
        return undefined;
    }
  },
  connectDetails(smtpClient) {
    const { family, address } = classifyClientAddress(smtpClient.address);
    if (family === 'unknown') return { hostname: smtpClient.hostname ?? 'localhost', family };
    if (family === 'unix') return { hostname: smtpClient.hostname ?? 'localhost', family, address: address!, port: 0 };
    const wire = family === 'inet6' ? `IPv6:${address}` : address!;
    return { hostname: smtpClient.hostname ?? `[${wire}]`, family, address: wire, port: smtpClient.port };
  },
  ownHeaders(state, recipients, date) {
    const address = sendmailAddress(state) ?? 'unknown';
    const forClause = recipients.length === 1 ? `\n\tfor ${recipients[0]}` : '';
    // The m4 default Received: template's "$?{auth_type}(authenticated$?{auth_ssf} bits=${auth_ssf}$.)".
    const authenticated = state.auth === undefined ? '' : `\n\t(authenticated bits=${AUTH_SSF})`;
    const received: HeaderEntry = {
      name: 'Received',
      value: ` from ${state.client.helo} (${state.client.hostname ?? `[${address}]`} [${address}])${authenticated}\n\tby ${state.hostname} (8.17.1.9/8.17.1.9) with ${state.auth === undefined ? 'ESMTP' : 'ESMTPA'} id ${state.queueId ?? 'unknown'}${forClause}; ${rfc5322Date(date)}`,
      origin: 'mta',
    };
    return [...DEFAULT_FIELDS_BEFORE_RECEIVED.map(hiddenDefault), received, ...DEFAULT_FIELDS_AFTER_RECEIVED.map(hiddenDefault)];
  },
  receivedFields(fields) {
    return [...fields];
  },
  deliveredFields: sendmailDeliveredFields,
  headerEditRules: 'sendmail',
  queueIdAssigned() {
    return true;
  },
  newQueueId() {
    return [...randomBytes(14)].map((byte) => ALPHANUMERIC[byte % ALPHANUMERIC.length]).join('');
  },
  abortsAfter(ending) {
    // Only a filter still "in message" is told; one that decided or saw EOM is done.
    return ending === 'abandoned';
  },
  quitAfterConnectionVerdict: true,
  smtpOutcome(stage, reply: StageReply, address?: string): SmtpOutcome {
    const outcome = sendmailOutcome(stage, reply);
    return address === undefined || (stage !== 'mail' && stage !== 'rcpt') ? outcome : { ...outcome, reply: addressedReply(outcome.reply, address) };
  },
  acceptedReply(queueId) {
    return `250 2.0.0 ${queueId} Message accepted for delivery`;
  },
  keepsQuarantineReason: true,
  noRecipientsReply: '503 5.0.0 Need RCPT (recipient)',
  // No F= flag: the message goes on as if the filter were not there.
  defaultAction: 'accept',
  defaultActionReply: '',
  contiguousBodyReplacement: false,
  configurationErrorReply: TEMPFAIL,
};
