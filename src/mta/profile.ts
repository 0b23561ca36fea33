/**
 * MTA profiles: what a given MTA sends to a milter and what it does with the answers. A profile is
 * plain data plus a few functions, so an application can define its own (for example a Postfix
 * with other macro lists) by spreading one of the built-in ones.
 */
import type { MilterClientOptions, StageReply } from '../client/connection.js';
import type { ConnectInfo, MacroStageName, SmtpStage } from '../protocol/codec.js';
import type { HeaderEditRules, HeaderEntry } from './header-edits.js';
import type { HeaderField, MailMessage } from './message.js';

/** The SMTP client, as the MTA sees it. */
export interface SmtpClient {
  /** IPv4 or IPv6 address, a unix socket path (starting with `/`), or undefined for a client of unknown kind (`sendmail -bs`). */
  address?: string;
  /** Its verified host name; undefined when reverse lookup failed. */
  hostname?: string;
  /** Its TCP port. */
  port: number;
  /** The HELO/EHLO argument. */
  helo: string;
}

/** An SMTP AUTH that succeeded on the session (RFC 4954). */
export interface SmtpAuth {
  /** The authentication identity as the MTA reports it (`{auth_authen}`). */
  user: string;
  /** The SASL mechanism (`{auth_type}`), e.g. `PLAIN`. */
  mechanism: string;
}

/** What the MTA knows when it computes macro values. */
export interface MtaState {
  /** The MTA's own host name (`$j`). */
  hostname: string;
  /** Address and port the client connected to. */
  serverAddress: string;
  serverPort: number;
  client: SmtpClient;
  /** Queue ID of the current message, once the MTA has assigned it (`$i`). */
  queueId?: string;
  /** The sender as the client typed it (`<a@b>`), from MAIL on. */
  sender?: string;
  /** The client's SMTP AUTH, when it authenticated before MAIL. */
  auth?: SmtpAuth;
  /** The `AUTH=` parameter of MAIL FROM as typed, xtext not decoded (`{auth_author}`), when given. */
  authParameter?: string;
  /** The recipient being checked, at RCPT. */
  recipient?: string;
  /** The message, from DATA on. */
  message?: MailMessage;
}

/** Macro lists per stage, names as configured (`j`, `{daemon_name}`). */
export type MacroLists = Readonly<Record<MacroStageName, readonly string[]>>;

/** What the MTA does when a milter fails (I/O error, timeout, protocol error). */
export type DefaultAction = 'accept' | 'reject' | 'tempfail';

/** A final reply as the MTA would give it to the SMTP client. */
export interface SmtpOutcome {
  verdict: 'accept' | 'reject' | 'tempfail';
  /** The SMTP reply line(s), CRLF between lines. */
  reply: string;
  /** Set when the MTA treats the milter's answer as a configuration error. */
  configurationError?: string;
}

/** One MTA's behaviour towards milters. */
export interface MtaProfile {
  /** Short name (`postfix`, `sendmail`). */
  name: string;
  /** Product and version whose behaviour is reproduced. */
  product: string;
  /** Offer, timeouts, leniency and limits of the client connection. */
  client: MilterClientOptions & { connectTimeout: number };
  /** The MTA's own macro lists (Postfix `milter_*_macros`, Sendmail `Milter.macros.*`). */
  macroLists: MacroLists;
  /**
   * The list used at a stage, given what the milter asked for in its OPTNEG reply; `null` means
   * no `D` packet at all.
   */
  macroListFor(stage: MacroStageName, requested: Partial<Record<MacroStageName, string[]>>): readonly string[] | null;
  /** Whether a `D` packet precedes every HEADER (with the EOH list), BODY (with the EOM list) and UNKNOWN (empty). */
  contentMacros: boolean;
  /** The value of a macro (name without braces), or undefined when the MTA does not know it now. */
  macroValue(name: string, state: MtaState): string | undefined;
  /** The CONNECT command for a client. */
  connectDetails(client: SmtpClient): ConnectInfo;
  /**
   * The MTA's own entries at the top of its header list, never shown to milters: its `Received:`
   * and, for Sendmail, the default fields of its configuration that the delivery leaves out but
   * INSHEADER indexes count (`hidden`).
   */
  ownHeaders(state: MtaState, recipients: readonly string[], date: Date): HeaderEntry[];
  /** The client's header fields as the MTA keeps them, before milters see them (Postfix drops `Bcc:`, `Return-Path:`...). */
  receivedFields(fields: readonly HeaderField[]): HeaderField[];
  /** The header fields as written into the delivered copy (Sendmail rewrites address lists, drops `Bcc:`, `Return-Path:`...). */
  deliveredFields(fields: readonly HeaderField[]): HeaderField[];
  /** Rules for header index arithmetic. */
  headerEditRules: HeaderEditRules;
  /** Whether the queue ID is known at this point (Postfix: after the first accepted recipient; Sendmail: from MAIL on). */
  queueIdAssigned(stage: 'mail' | 'rcpt' | 'data', acceptedRecipients: number): boolean;
  /** A new queue ID in the MTA's format. */
  newQueueId(): string;
  /**
   * Whether ABORT follows a transaction. `completed`: the milter saw end of message; `decided`:
   * the milter ended the transaction earlier with a final verdict; `abandoned`: the MTA ended it
   * (no valid recipient, or a failure).
   */
  abortsAfter(ending: 'completed' | 'decided' | 'abandoned'): boolean;
  /** Whether QUIT is sent after the milter gave a verdict at CONNECT or HELO (Sendmail: yes; Postfix just closes). */
  quitAfterConnectionVerdict: boolean;
  /**
   * The SMTP outcome of a reject or tempfail (or Postfix's shutdown) that ends a command; a discard
   * is answered like an accepted message, by the session.
   * @param address the address of the MAIL or RCPT command being answered (Sendmail quotes it)
   */
  smtpOutcome(stage: SmtpStage, reply: StageReply, address?: string): SmtpOutcome;
  /** The reply to an accepted message; also the reply to a discarded one. */
  acceptedReply(queueId: string): string;
  /** Whether the reason of a quarantine is kept with the held message (Sendmail: its `q` line; Postfix 3.7 keeps none). */
  keepsQuarantineReason: boolean;
  /** The reply at DATA when every recipient was refused. */
  noRecipientsReply: string;
  /** What happens to the message when the milter fails. */
  defaultAction: DefaultAction;
  /** The reply for the default action. */
  defaultActionReply: string;
  /** Whether REPLBODY packets split by other edits are refused as a configuration error (Postfix). */
  contiguousBodyReplacement: boolean;
  /** The reply when the MTA finds the milter's answer to be a configuration error. */
  configurationErrorReply: string;
}

/** A macro name without braces (`{i}` and `i` are the same macro). */
export function macroKey(name: string): string {
  return name.startsWith('{') && name.endsWith('}') ? name.slice(1, -1) : name;
}

/** An address without its angle brackets. */
export function bareAddress(address: string): string {
  const trimmed = address.trim();
  return trimmed.startsWith('<') && trimmed.endsWith('>') ? trimmed.slice(1, -1) : trimmed;
}

/** The domain of an address, or undefined. */
export function addressDomain(address: string): string | undefined {
  const bare = bareAddress(address);
  const at = bare.lastIndexOf('@');
  return at < 0 ? undefined : bare.slice(at + 1);
}

/**
 * Macros both MTAs derive the same way: the queue ID, the client port, the SMTP AUTH (mechanism,
 * identity, and the `AUTH=` parameter of MAIL FROM, which both pass on whether or not the client
 * authenticated), and the sender and recipient with their domain and delivery agent (`mailer`:
 * Postfix `smtp`, Sendmail `esmtp`).
 * @returns the value (undefined when not known now), or null for a macro not of this kind
 */
export function envelopeMacro(name: string, state: MtaState, mailer: string): string | undefined | null {
  switch (name) {
    case 'i':
      return state.queueId;
    case 'client_port':
      return String(state.client.port);
    case 'auth_type':
      return state.auth?.mechanism;
    case 'auth_authen':
      return state.auth?.user;
    case 'auth_author':
      return state.authParameter;
    case 'mail_addr':
      return state.sender === undefined ? undefined : bareAddress(state.sender);
    case 'mail_host':
      return state.sender === undefined ? undefined : addressDomain(state.sender);
    case 'mail_mailer':
      return state.sender === undefined || addressDomain(state.sender) === undefined ? undefined : mailer;
    case 'rcpt_addr':
      return state.recipient === undefined ? undefined : bareAddress(state.recipient);
    case 'rcpt_host':
      return state.recipient === undefined ? undefined : addressDomain(state.recipient);
    case 'rcpt_mailer':
      return state.recipient === undefined ? undefined : mailer;
    default:
      return null;
  }
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** An RFC 5322 date in UTC, as MTAs write in `Received:`. */
export function rfc5322Date(date: Date): string {
  const pad = (n: number): string => String(n).padStart(2, '0');
  return `${DAYS[date.getUTCDay()]}, ${date.getUTCDate()} ${MONTHS[date.getUTCMonth()]} ${date.getUTCFullYear()} ${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}:${pad(date.getUTCSeconds())} +0000`;
}
