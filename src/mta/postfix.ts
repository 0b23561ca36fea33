/**
 * Postfix 3.7 (Debian 12) as a milter client, from `milter8.c`, `smtpd.c` and `cleanup_milter.c`
 * (milter-protocol.md §4-§7).
 */
import { randomBytes } from 'node:crypto';
import type { StageReply } from '../client/connection.js';
import { DEFAULT_OFFER } from '../client/negotiation.js';
import { classifyClientAddress } from './client-address.js';
import { UNDELIVERED_FIELDS, fieldNamed } from './message.js';
import { envelopeMacro, rfc5322Date, type MtaProfile, type MtaState, type SmtpOutcome } from './profile.js';

const REJECT = '550 5.7.1 Command rejected';
const TEMPFAIL = '451 4.7.1 Service unavailable - try again later';
const SHUTDOWN = '421 4.7.0 Server closing connection';
const CONFIG_ERROR = '451 4.3.5 Server configuration problem';

/**
 * Postfix's check of a REPLYCODE text (3.7 and earlier): the first line must start `[45]dd` then
 * a space or dash, and a digit in 5th place must repeat the class. `%%` becomes `%`, a lone `%`
 * is dropped.
 */
function postfixReplyText(text: string): string | undefined {
  if (!/^[45][0-9][0-9][ -]/.test(text)) return undefined;
  if (/[0-9]/.test(text[4] ?? '') && text[4] !== text[0]) return undefined;
  return text.replace(/%(%?)/g, '$1');
}

function client(state: MtaState): { ip: string | undefined; name: string } {
  const { address } = classifyClientAddress(state.client.address);
  return { ip: address, name: state.client.hostname ?? 'unknown' };
}

/** Postfix with its default settings (`milter_protocol = 6`, default macro lists, `milter_default_action = tempfail`). */
export const postfixProfile: MtaProfile = {
  name: 'postfix',
  product: 'Postfix 3.7.11',
  client: {
    offer: { ...DEFAULT_OFFER },
    timeouts: { command: 30_000, content: 300_000 },
    connectTimeout: 30_000,
    leniency: { progressAnyStage: true, quarantineAnyStage: true, skipAnyStage: true, acceptShutdown: true },
    negotiationChecks: { allowHigherVersion: false, ignoreUnofferedProtocol: true },
  },
  macroLists: {
    connect: ['j', '{daemon_name}', '{daemon_addr}', 'v', '_'],
    helo: ['{tls_version}', '{cipher}', '{cipher_bits}', '{cert_subject}', '{cert_issuer}'],
    envfrom: ['i', '{auth_type}', '{auth_authen}', '{auth_author}', '{mail_addr}', '{mail_host}', '{mail_mailer}'],
    envrcpt: ['i', '{rcpt_addr}', '{rcpt_host}', '{rcpt_mailer}'],
    data: ['i'],
    eoh: ['i'],
    eom: ['i'],
  },
  macroListFor(stage, requested) {
    // An empty per-milter list means "the global list" in Postfix.
    const own = requested[stage];
    return own !== undefined && own.length > 0 ? own : this.macroLists[stage];
  },
  contentMacros: true,
  macroValue(name, state) {
    // smtpd keeps no AUTH=<> (an unknown authorization identity); Sendmail passes it on.
    if (name === 'auth_author' && state.authParameter === '<>') return undefined;
    const shared = envelopeMacro(name, state, 'smtp');
    if (shared !== null) return shared;
    const peer = client(state);
    switch (name) {
      case 'j':
      case 'daemon_name':
        return state.hostname;
      case 'daemon_addr':
        return state.serverAddress;
      case 'daemon_port':
        return String(state.serverPort);
      case 'v':
        return this.product;
      case '_':
        return `${peer.name} [${peer.ip ?? 'unknown'}]`;
      case 'client_addr':
        return peer.ip === undefined ? undefined : peer.ip.includes(':') ? `IPv6:${peer.ip}` : peer.ip;
      case 'client_name':
      case 'client_ptr':
      case 'client_resolve':
        return peer.name;
      default:
        return undefined;
    }
  },
  connectDetails(smtpClient) {
    const { family, address } = classifyClientAddress(smtpClient.address);
    if (family === 'unknown') return { hostname: smtpClient.hostname ?? 'localhost', family };
    // An unverified client is "[addr]", IPv6 bare inside the brackets.
    const hostname = smtpClient.hostname ?? (family === 'unix' ? 'localhost' : `[${address}]`);
    return { hostname, family, address: address!, port: family === 'unix' ? 0 : smtpClient.port };
  },
  ownHeaders(state, recipients, date) {
    const peer = client(state);
    const forClause = recipients.length === 1 ? `\n\tfor ${recipients[0]}` : '';
    return [
      {
        name: 'Received',
        value: ` from ${state.client.helo} (${peer.name} [${peer.ip ?? 'unknown'}])\n\tby ${state.hostname} (Postfix) with ${state.auth === undefined ? 'ESMTP' : 'ESMTPA'} id ${state.queueId ?? 'unknown'}${forClause}; ${rfc5322Date(date)}`,
        origin: 'mta',
      },
    ];
  },
  receivedFields(fields) {
    // cleanup(8) removes them (message_drop_headers) before the milters see the header.
    return fields.filter((field) => !fieldNamed(field, UNDELIVERED_FIELDS));
  },
  deliveredFields(fields) {
    return [...fields];
  },
  headerEditRules: 'postfix',
  queueIdAssigned(stage, acceptedRecipients) {
    // The queue file is created when the first recipient is accepted, after the milter saw it.
    return stage === 'data' || acceptedRecipients > 0;
  },
  newQueueId() {
    return randomBytes(5).toString('hex').toUpperCase();
  },
  abortsAfter() {
    // mail_reset() sends ABORT after every transaction that reached MAIL, successful or not.
    return true;
  },
  quitAfterConnectionVerdict: false,
  smtpOutcome(_stage, reply: StageReply): SmtpOutcome {
    switch (reply.verdict) {
      case 'reject':
      case 'tempfail': {
        if (reply.replyText === undefined) return { verdict: reply.verdict, reply: reply.verdict === 'reject' ? REJECT : TEMPFAIL };
        const text = postfixReplyText(reply.replyText);
        if (text === undefined) return { verdict: 'tempfail', reply: CONFIG_ERROR, configurationError: `malformed reply text "${reply.replyText}"` };
        return { verdict: text[0] === '4' ? 'tempfail' : 'reject', reply: text };
      }
      case 'shutdown':
        return { verdict: 'tempfail', reply: SHUTDOWN };
      default:
        return { verdict: 'accept', reply: '' };
    }
  },
  acceptedReply(queueId) {
    return `250 2.0.0 Ok: queued as ${queueId}`;
  },
  // The message goes to the hold queue; 3.7 logs "milter triggers HOLD action" and stores no reason.
  keepsQuarantineReason: false,
  noRecipientsReply: '554 5.5.1 Error: no valid recipients',
  defaultAction: 'tempfail',
  defaultActionReply: TEMPFAIL,
  contiguousBodyReplacement: true,
  configurationErrorReply: CONFIG_ERROR,
};
