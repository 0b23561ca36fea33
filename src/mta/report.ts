/**
 * The outcome of one message run through a milter: each stage's reply, the modifications, the
 * verdict and reply the SMTP client would get, and the message as the MTA would deliver it.
 */
import type { ReplyVerdict } from '../client/connection.js';
import { MilterClientError, MilterProtocolError, MilterTimeoutError } from '../client/errors.js';
import type { Modification } from '../client/modifications.js';
import { describeProtocol, type NegotiatedOptions } from '../client/negotiation.js';
import type { MacroStageName } from '../protocol/codec.js';
import { describeActions } from '../protocol/index.js';
import type { DeliveryEnvelope } from './apply.js';
import { headerValue, serializeMessage, type HeaderField, type MailMessage } from './message.js';

/** One step of the conversation with the milter. */
export interface StageRecord {
  stage: 'negotiate' | 'connect' | 'helo' | 'mail' | 'rcpt' | 'data' | 'header' | 'eoh' | 'body' | 'eom' | 'unknown' | 'abort' | 'quit' | 'close';
  /** What the command carried: HELO name, address, header name, body size. */
  argument?: string;
  /** The `D` packet sent before the command, if any (names as sent). */
  macros?: Array<[string, string]>;
  /** False when the milter declined the command (NO*). */
  sent: boolean;
  /** False when no reply was read (NO* or NR*, or a command that has none). */
  awaited: boolean;
  /** The reply packet's type. */
  reply?: string;
  verdict?: ReplyVerdict;
  /** Text of a REPLYCODE reply. */
  replyText?: string;
  /** PROGRESS packets before the reply. */
  progress?: number;
  /** Number of BODY packets (body stage). */
  packets?: number;
}

/** Negotiated options in readable form. */
export interface NegotiationSummary {
  version: number;
  actions: string[];
  protocol: string[];
  /** Macro names the milter asked for, per stage. */
  macros: Partial<Record<MacroStageName, string[]>>;
}

/** The final outcome of a message; `abandoned` when the client ended the transaction before DATA (`stopBeforeData`). */
export type MessageVerdict = 'accept' | 'reject' | 'tempfail' | 'discard' | 'abandoned';

/** A plain description of an error, for JSON. */
export interface ErrorSummary {
  name: string;
  message: string;
  code?: string;
  stage?: string;
}

/** Fields of a report. */
export interface DeliveryReportData {
  profile: string;
  negotiated?: NegotiationSummary;
  stages: StageRecord[];
  verdict: MessageVerdict;
  /** The SMTP reply the client would get at the end of the transaction. */
  smtpReply: string;
  /** The stage whose reply decided the verdict (absent when the message went all the way through). */
  decidedAt?: string;
  /**
   * True when the milter quarantined the message: the MTA holds it (Postfix: hold queue; Sendmail:
   * an `hf` queue file) instead of delivering it; `message` and `envelope` are what it holds.
   */
  held: boolean;
  /** The quarantine reason, where the MTA keeps one with the held message (Sendmail; Postfix 3.7 keeps none). */
  quarantine?: string;
  recipients: { accepted: string[]; rejected: Array<{ recipient: string; reply: string }> };
  modifications: Modification[];
  /** The envelope as delivered or held (after the milter's changes); absent when nothing is delivered. */
  envelope?: DeliveryEnvelope;
  /** The message as delivered or held, MTA's `Received:` included; absent when nothing is delivered. */
  message?: MailMessage;
  /** The failure that made the MTA apply its default action. */
  error?: MilterClientError | Error;
  /** Set when the MTA refused the milter's answer as a configuration error. */
  configurationError?: string;
}

/** Summarises negotiated options with bit names. */
export function summarizeNegotiation(options: NegotiatedOptions): NegotiationSummary {
  return {
    version: options.version,
    actions: describeActions(options.actions).split(', ').filter((name) => name !== 'none'),
    protocol: describeProtocol(options.protocol).split(', ').filter((name) => name !== 'none'),
    macros: options.macros,
  };
}

/** Plain description of an error. */
export function summarizeError(error: Error): ErrorSummary {
  const summary: ErrorSummary = { name: error.name, message: error.message };
  if (error instanceof MilterProtocolError) summary.code = error.code;
  if (error instanceof MilterProtocolError || error instanceof MilterTimeoutError) {
    if (error.stage !== undefined) summary.stage = error.stage;
  }
  return summary;
}

/** The outcome of one message, with helpers for assertions. */
export class DeliveryReport implements DeliveryReportData {
  profile!: string;
  negotiated?: NegotiationSummary;
  stages!: StageRecord[];
  verdict!: MessageVerdict;
  smtpReply!: string;
  decidedAt?: string;
  held!: boolean;
  quarantine?: string;
  recipients!: DeliveryReportData['recipients'];
  modifications!: Modification[];
  envelope?: DeliveryEnvelope;
  message?: MailMessage;
  error?: MilterClientError | Error;
  configurationError?: string;

  constructor(data: DeliveryReportData) {
    Object.assign(this, data);
  }

  /** The stage records of one kind (`rcpt`, `header`...). */
  stagesOf(stage: StageRecord['stage']): StageRecord[] {
    return this.stages.filter((record) => record.stage === stage);
  }

  /** The first record of a stage. */
  stage(stage: StageRecord['stage']): StageRecord | undefined {
    return this.stages.find((record) => record.stage === stage);
  }

  /** The `n`th (1-based) delivered header field called `name`, value without leading whitespace. */
  header(name: string, n = 1): string | undefined {
    return this.message === undefined ? undefined : headerValue(this.message, name, n);
  }

  /** All delivered header fields called `name` (any case). */
  headers(name?: string): HeaderField[] {
    const all = this.message?.headers ?? [];
    return name === undefined ? all : all.filter((field) => field.name.trim().toLowerCase() === name.toLowerCase());
  }

  /** The delivered body as text (UTF-8), or undefined. */
  get bodyText(): string | undefined {
    return this.message?.body.toString('utf8');
  }

  /** The delivered message as bytes, CRLF line ends, or undefined. */
  get raw(): Buffer | undefined {
    return this.message === undefined ? undefined : serializeMessage(this.message);
  }

  /** A JSON-friendly copy: bodies as text, header bytes that are not UTF-8 in base64 (`rawBase64`), the error as a summary. */
  toJSON(): object {
    const headers = this.message?.headers.map(({ raw, ...field }) => (raw === undefined ? field : { ...field, rawBase64: raw.toString('base64') }));
    return {
      ...this,
      modifications: this.modifications.map((m) => (m.type === 'replaceBody' ? { ...m, body: m.body.toString('utf8') } : m)),
      message: this.message === undefined ? undefined : { headers, body: this.message.body.toString('utf8') },
      error: this.error === undefined ? undefined : summarizeError(this.error),
    };
  }
}
