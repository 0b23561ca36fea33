/**
 * A virtual MTA: runs SMTP sessions and messages through a milter connection exactly as the MTA
 * of a profile would — its macros at each stage, header values the way it sends them, CRLF body
 * chunks, ABORT and QUIT where it sends them — and applies the answers as it would.
 */
import type { MilterConnection, StageReply } from '../client/connection.js';
import { MilterClientError, MilterUsageError } from '../client/errors.js';
import type { Modification } from '../client/modifications.js';
import type { NegotiatedOptions } from '../client/negotiation.js';
import { stageBySmtp, type MacroStageName, type SmtpStage } from '../protocol/codec.js';
import { Protocol } from '../protocol/index.js';
import { applyModifications, bracketAddress, type DeliveryEnvelope, type EnvelopeRecipient } from './apply.js';
import type { HeaderEntry } from './header-edits.js';
import { addressesIn, cloneMessage, headerValueBytes, parseMessage, type MailMessage } from './message.js';
import { macroKey, type MtaProfile, type MtaState, type SmtpClient, type SmtpOutcome } from './profile.js';
import { DeliveryReport, summarizeNegotiation, type MessageVerdict, type StageRecord } from './report.js';

/** The envelope of a message to run. */
export interface EnvelopeInput {
  /** MAIL FROM as typed (`<a@b>`; brackets are added when missing). Default: the address of the From: header. */
  from?: string;
  /** ESMTP arguments of MAIL FROM (`SIZE=1234`). */
  fromArgs?: string[];
  /** RCPT TO addresses, each optionally with ESMTP arguments. Default: the addresses of To:, Cc: and Bcc:. */
  recipients?: Array<string | { address: string; args?: string[] }>;
  /**
   * The client ends the transaction after its recipients (RSET, or QUIT) instead of sending DATA:
   * the milter sees MAIL and RCPT, then ABORT where the MTA sends one; the verdict is `abandoned`.
   */
  stopBeforeData?: boolean;
  /**
   * The client authenticated (SMTP AUTH) before this message's MAIL FROM: the MTA sends
   * `{auth_type}` and `{auth_authen}` (Sendmail also `{auth_ssf}`) and writes `ESMTPA` in its
   * `Received:`. The mechanism defaults to `PLAIN`.
   */
  auth?: { user: string; mechanism?: string };
}

/** The SMTP session around the messages. */
export interface SessionOptions {
  /** The SMTP client (defaults: `127.0.0.1`, host name `localhost`, port 0, HELO = host name). */
  client?: Partial<SmtpClient>;
  /** The MTA's host name (default `mx.example.test`). */
  hostname?: string;
  /** The address and port the client connected to (default `127.0.0.1`, 25). */
  serverAddress?: string;
  serverPort?: number;
  /**
   * Macro values known to the MTA (added or overriding its own; `i` and `{i}` alike). Sent where the
   * macro lists name them; `i` sets the queue ID, sent from the stage where the MTA has one.
   */
  macros?: Readonly<Record<string, string>>;
  /** Macros sent at a stage whatever the lists say. */
  stageMacros?: Partial<Record<MacroStageName, Readonly<Record<string, string>>>>;
  /** Time used in the MTA's `Received:` field (default: now). */
  date?: Date;
  /** SMTP commands the MTA did not recognise, sent as UNKNOWN after HELO. */
  unknownCommands?: string[];
}

const SPACE = 0x20;

/** A message ends in one of these ways, which decides whether ABORT follows. */
type Ending = 'completed' | 'decided' | 'abandoned';

interface MessageRun {
  records: StageRecord[];
  accepted: string[];
  rejected: Array<{ recipient: string; reply: string }>;
  quarantine?: string;
}

/**
 * One SMTP session through a milter.
 *
 * @example
 * ```ts
 * const session = new MtaSession(await connectMilter('unix:/run/milter.sock'), postfixProfile, { client: { address: '192.0.2.1' } });
 * await session.open();
 * const report = await session.deliver(parseMessage(eml), { from: '<a@example.org>', recipients: ['<b@example.net>'] });
 * await session.close();
 * ```
 */
export class MtaSession {
  private readonly state: MtaState;
  private readonly overrides = new Map<string, string>();
  private negotiated: NegotiatedOptions | undefined;
  /**
   * Where stage records go. After a message, ABORT and QUIT still land in that message's report;
   * the next message starts a new list.
   */
  private pendingRecords: StageRecord[] = [];
  private pendingRecordsReported = false;
  /** Set when the milter answered CONNECT or HELO with a final verdict: later messages get this. */
  private connectionOutcome: (SmtpOutcome & { stage: string }) | undefined;
  /** Set when the milter accepted the whole connection: later messages pass unfiltered. */
  private connectionAccepted = false;
  private failure: Error | undefined;
  private opened = false;

  constructor(
    private readonly connection: MilterConnection,
    private readonly profile: MtaProfile,
    private readonly options: SessionOptions = {},
  ) {
    const hostname = options.client?.hostname ?? (options.client?.address === undefined ? 'localhost' : undefined);
    const client: SmtpClient = {
      address: options.client?.address ?? '127.0.0.1',
      port: options.client?.port ?? 0,
      helo: options.client?.helo ?? hostname ?? `[${options.client?.address}]`,
    };
    if (hostname !== undefined) client.hostname = hostname;
    this.state = {
      hostname: options.hostname ?? 'mx.example.test',
      serverAddress: options.serverAddress ?? '127.0.0.1',
      serverPort: options.serverPort ?? 25,
      client,
    };
    for (const [name, value] of Object.entries(options.macros ?? {})) this.overrides.set(macroKey(name), value);
  }

  /** The negotiated options, after {@link open}. */
  get negotiatedOptions(): NegotiatedOptions | undefined {
    return this.negotiated;
  }

  /** Negotiates, then sends CONNECT and HELO (and any UNKNOWN commands). Failures are kept for the reports. */
  async open(): Promise<void> {
    if (this.opened) throw new MilterUsageError('the session is already open');
    this.opened = true;
    const records = this.pendingRecords;
    try {
      this.negotiated = await this.connection.negotiate();
      records.push({ stage: 'negotiate', sent: true, awaited: true, reply: 'optneg' });
      const details = this.profile.connectDetails(this.state.client);
      const connect = await this.step(records, 'connect', details.address === undefined ? details.hostname : `${details.hostname} [${details.address}]`, (macros) =>
        this.connection.connect(details, macros),
      );
      if (this.connectionVerdict('connect', connect)) return;
      const helo = await this.step(records, 'helo', this.state.client.helo, (macros) => this.connection.helo(this.state.client.helo, macros));
      if (this.connectionVerdict('helo', helo)) return;
      for (const line of this.options.unknownCommands ?? []) {
        const macros = this.profile.contentMacros ? { macros: [] as Array<[string, string]> } : {};
        this.record(records, 'unknown', line, macros.macros, await this.connection.unknown(line, macros));
      }
    } catch (error) {
      this.recordFailure(error);
    }
  }

  /** Runs one message. Never throws for a milter failure: the report carries the error and the default action. */
  async deliver(input: MailMessage | Buffer | string, envelopeInput: EnvelopeInput = {}): Promise<DeliveryReport> {
    const message = Buffer.isBuffer(input) || typeof input === 'string' ? parseMessage(input) : cloneMessage(input);
    const envelope = resolveEnvelope(message, envelopeInput);
    message.headers = this.profile.receivedFields(message.headers);
    if (!this.opened) await this.open();
    if (this.pendingRecordsReported) this.pendingRecords = [];
    this.pendingRecordsReported = true;
    const run: MessageRun = { records: this.pendingRecords, accepted: [], rejected: [] };
    delete this.state.queueId;
    delete this.state.message;
    this.state.sender = envelope.sender;
    this.setAuth(envelopeInput, envelope);

    if (this.failure !== undefined) return this.failed(run, message, envelope);
    if (this.connectionOutcome !== undefined) {
      return this.report(run, { verdict: this.connectionOutcome.verdict, smtpReply: this.connectionOutcome.reply, decidedAt: this.connectionOutcome.stage });
    }
    if (this.connectionAccepted) return this.unfiltered(run, message, envelope, envelope.recipients.map((r) => r.address));

    let ending: Ending = 'decided';
    try {
      const result = await this.runMessage(run, message, envelope, envelopeInput.stopBeforeData === true);
      ending = result.ending;
      return result.report;
    } catch (error) {
      ending = 'abandoned';
      this.recordFailure(error);
      return this.failed(run, message, envelope);
    } finally {
      if (this.failure === undefined && this.profile.abortsAfter(ending)) {
        await this.connection.abort();
        this.pendingRecords.push({ stage: 'abort', sent: true, awaited: false });
      }
    }
  }

  /** The AUTH state of the message's MAIL FROM. */
  private setAuth(input: EnvelopeInput, envelope: DeliveryEnvelope): void {
    delete this.state.auth;
    delete this.state.authParameter;
    if (input.auth !== undefined) this.state.auth = { user: input.auth.user, mechanism: input.auth.mechanism ?? 'PLAIN' };
    const parameter = envelope.senderArgs?.split(' ').find((arg) => /^AUTH=/i.test(arg));
    if (parameter !== undefined) this.state.authParameter = parameter.slice('AUTH='.length);
  }

  /** Ends the session: QUIT, or (Postfix, after any verdict at CONNECT or HELO) just closing the socket. */
  async close(): Promise<void> {
    if (this.connection.closed) return;
    const connectionDecided = this.connectionOutcome !== undefined || this.connectionAccepted;
    if (connectionDecided && !this.profile.quitAfterConnectionVerdict) {
      this.connection.close();
      this.pendingRecords.push({ stage: 'close', sent: false, awaited: false });
    } else {
      await this.connection.quit();
      this.pendingRecords.push({ stage: 'quit', sent: true, awaited: false });
    }
  }

  private async runMessage(run: MessageRun, message: MailMessage, envelope: DeliveryEnvelope, stopBeforeData: boolean): Promise<{ ending: Ending; report: DeliveryReport }> {
    const profile = this.profile;
    const records = run.records;
    if (profile.queueIdAssigned('mail', 0)) this.assignQueueId();
    const mail = await this.step(records, 'mail', envelope.sender, (macros) =>
      this.connection.mail(envelope.sender, { ...macros, args: envelope.senderArgs === undefined ? [] : envelope.senderArgs.split(' ') }),
    );
    const mailEnd = this.decided(run, 'mail', mail, message, envelope, envelope.recipients.map((r) => r.address), envelope.sender);
    if (mailEnd !== undefined) return { ending: 'decided', report: mailEnd };

    const recipients: EnvelopeRecipient[] = [];
    for (const recipient of envelope.recipients) {
      if (profile.queueIdAssigned('rcpt', recipients.length)) this.assignQueueId();
      this.state.recipient = recipient.address;
      const reply = await this.step(records, 'rcpt', recipient.address, (macros) =>
        this.connection.rcpt(recipient.address, { ...macros, args: recipient.args === undefined ? [] : recipient.args.split(' ') }),
      );
      delete this.state.recipient;
      if (reply.verdict === 'reject' || reply.verdict === 'tempfail') {
        const outcome = profile.smtpOutcome('rcpt', reply, recipient.address);
        if (outcome.configurationError !== undefined) return { ending: 'decided', report: this.configurationError(run, 'rcpt', outcome) };
        run.rejected.push({ recipient: recipient.address, reply: outcome.reply });
        continue;
      }
      recipients.push(recipient);
      if (reply.verdict !== 'continue') {
        // ACCEPT or DISCARD on a recipient settles the whole message; the rest get no milter call.
        const rest = envelope.recipients.slice(envelope.recipients.indexOf(recipient) + 1);
        const settled = this.decided(
          run,
          'rcpt',
          reply,
          message,
          { ...envelope, recipients: [...recipients, ...rest] },
          [...recipients, ...rest].map((r) => r.address),
          recipient.address,
        );
        if (settled !== undefined) return { ending: 'decided', report: settled };
      }
    }
    run.accepted = recipients.map((r) => r.address);
    if (stopBeforeData) return { ending: 'abandoned', report: this.report(run, { verdict: 'abandoned', smtpReply: '' }) };
    if (recipients.length === 0) {
      // The client retries recipients refused with 4xx: then the transaction is only deferred.
      const deferred = run.rejected.find((r) => r.reply.startsWith('4'));
      const outcome = deferred === undefined ? { verdict: 'reject' as const, smtpReply: profile.noRecipientsReply } : { verdict: 'tempfail' as const, smtpReply: deferred.reply };
      return { ending: 'abandoned', report: this.report(run, { ...outcome, decidedAt: 'rcpt' }) };
    }
    const delivered: DeliveryEnvelope = { ...envelope, recipients };
    if (profile.queueIdAssigned('data', recipients.length)) this.assignQueueId();
    this.state.message = message;

    const data = await this.step(records, 'data', undefined, (macros) => this.connection.data(macros));
    const dataEnd = this.decided(run, 'data', data, message, delivered, run.accepted);
    if (dataEnd !== undefined) return { ending: 'decided', report: dataEnd };

    const contentEnd = await this.sendContent(run, message, delivered);
    if (contentEnd !== undefined) return { ending: 'decided', report: contentEnd };

    const eomOptions = this.macroOption('eom');
    const eom = await this.connection.endOfMessage(eomOptions);
    this.record(records, 'eom', undefined, eomOptions.macros, eom);
    if (eom.quarantine !== undefined) run.quarantine = eom.quarantine;
    return { ending: 'completed', report: this.finishMessage(run, message, delivered, eom.verdict === 'accept' ? undefined : eom, eom.modifications) };
  }

  /** HEADER, EOH and BODY, with the profile's macros; returns a report if the milter settled the message. */
  private async sendContent(run: MessageRun, message: MailMessage, envelope: DeliveryEnvelope): Promise<DeliveryReport | undefined> {
    const protocol = this.negotiated!.protocol;
    const leadingSpace = (protocol & Protocol.HDR_LEADSPC) !== 0;
    const contentMacros = (off: number, stage: MacroStageName): { macros?: Array<[string, string]> } =>
      this.profile.contentMacros && (protocol & off) === 0 ? this.macroOption(stage) : this.noMacros();
    for (const field of message.headers) {
      // Both MTAs drop exactly one space after the colon unless HDR_LEADSPC; Postfix trims the name.
      // The bytes go as they came: 8-bit header data reaches the milter unchanged.
      const bytes = headerValueBytes(field);
      const value = leadingSpace || bytes[0] !== SPACE ? bytes : bytes.subarray(1);
      const name = field.name.trimEnd();
      const options = contentMacros(Protocol.NOHDRS, 'eoh');
      const reply = await this.connection.header(name, value, options);
      this.record(run.records, 'header', name, options.macros, reply);
      if (reply.verdict === 'skip') break;
      const end = this.decided(run, 'header', reply, message, envelope, run.accepted);
      if (end !== undefined) return end;
    }
    // Neither MTA sends EOH macros to a milter that declined EOH.
    const eohOptions = (protocol & Protocol.NOEOH) === 0 ? this.macroOption('eoh') : this.noMacros();
    const eoh = await this.connection.eoh(eohOptions);
    this.record(run.records, 'eoh', undefined, eohOptions.macros, eoh);
    const eohEnd = this.decided(run, 'eoh', eoh, message, envelope, run.accepted);
    if (eohEnd !== undefined) return eohEnd;

    if (message.body.length > 0) {
      const options = contentMacros(Protocol.NOBODY, 'eom');
      const body = await this.connection.body(message.body, options);
      const record = this.record(run.records, 'body', `${message.body.length} bytes`, options.macros, body);
      if (body.sent) record.packets = Math.ceil(message.body.length / 65535);
      if (body.verdict !== 'skip') return this.decided(run, 'body', body, message, envelope, run.accepted);
    }
    return undefined;
  }

  private noMacros(): { macros?: Array<[string, string]> } {
    return {};
  }

  /** The `D` packet content for a stage, following the profile's lists and the milter's requests. */
  private macroOption(stage: MacroStageName): { macros?: Array<[string, string]> } {
    const list = this.profile.macroListFor(stage, this.negotiated!.macros);
    const forced = this.options.stageMacros?.[stage];
    if (list === null && forced === undefined) return this.noMacros();
    const pairs: Array<[string, string]> = [];
    for (const name of list ?? []) {
      const key = macroKey(name);
      // A given queue ID is used once the MTA has one (Postfix: not at MAIL).
      const value = key === 'i' ? this.state.queueId : (this.overrides.get(key) ?? this.profile.macroValue(key, this.state));
      if (value !== undefined) pairs.push([name, value]);
    }
    for (const [name, value] of Object.entries(forced ?? {})) {
      const existing = pairs.findIndex(([sent]) => macroKey(sent) === macroKey(name));
      if (existing >= 0) pairs.splice(existing, 1);
      pairs.push([name, value]);
    }
    return { macros: pairs };
  }

  /** Runs one command with its stage's macros and records it. */
  private async step(
    records: StageRecord[],
    stage: 'connect' | 'helo' | 'mail' | 'rcpt' | 'data',
    argument: string | undefined,
    send: (options: { macros?: Array<[string, string]> }) => Promise<StageReply>,
  ): Promise<StageReply> {
    const options = this.macroOption(stageBySmtp[stage].callback as MacroStageName);
    const reply = await send(options);
    this.record(records, stage, argument, options.macros, reply);
    return reply;
  }

  private record(records: StageRecord[], stage: StageRecord['stage'], argument: string | undefined, macros: Array<[string, string]> | undefined, reply: StageReply): StageRecord {
    const record: StageRecord = { stage, sent: reply.sent, awaited: reply.awaited };
    if (argument !== undefined) record.argument = argument;
    if (macros !== undefined) record.macros = macros;
    if (reply.reply !== undefined) record.reply = reply.reply;
    if (reply.awaited) record.verdict = reply.verdict;
    if (reply.replyText !== undefined) record.replyText = reply.replyText;
    if (reply.progress > 0) record.progress = reply.progress;
    records.push(record);
    return record;
  }

  private assignQueueId(): void {
    this.state.queueId ??= this.overrides.get('i') ?? this.profile.newQueueId();
  }

  /** A verdict at CONNECT or HELO; returns true when filtering of the connection is over. */
  private connectionVerdict(stage: 'connect' | 'helo', reply: StageReply): boolean {
    switch (reply.verdict) {
      case 'continue':
      case 'discard': // not defined at connection level: both MTAs go on
      case 'skip':
        return false;
      case 'accept':
        this.connectionAccepted = true;
        return true;
      default:
        this.connectionOutcome = { ...this.profile.smtpOutcome(stage, reply), stage };
        return true;
    }
  }

  /**
   * A final verdict before end of message; undefined when the milter said continue.
   * @param address the sender at MAIL, the recipient at RCPT
   */
  private decided(
    run: MessageRun,
    stage: SmtpStage,
    reply: StageReply,
    message: MailMessage,
    envelope: DeliveryEnvelope,
    recipients: string[],
    address?: string,
  ): DeliveryReport | undefined {
    if (reply.quarantine !== undefined) run.quarantine = reply.quarantine;
    if (reply.verdict === 'continue' || reply.verdict === 'skip') return undefined;
    if (reply.verdict === 'accept') {
      run.accepted = recipients;
      return this.unfiltered(run, message, envelope, recipients, stage);
    }
    if (reply.verdict === 'discard') {
      run.accepted = recipients;
      return this.discarded(run, stage);
    }
    const outcome = this.profile.smtpOutcome(stage, reply, address);
    if (outcome.configurationError !== undefined) return this.configurationError(run, stage, outcome);
    return this.report(run, { verdict: outcome.verdict, smtpReply: outcome.reply, decidedAt: stage });
  }

  /**
   * A discarded message: the client is told what an accepted one would be (both MTAs give their
   * ordinary queued reply, queue ID included); nothing is delivered.
   */
  private discarded(run: MessageRun, stage: string, modifications: Modification[] = []): DeliveryReport {
    this.assignQueueId();
    return this.report(run, { verdict: 'discard', smtpReply: this.profile.acceptedReply(this.state.queueId!), decidedAt: stage, modifications });
  }

  /** The message goes through without (further) changes by the milter. */
  private unfiltered(run: MessageRun, message: MailMessage, envelope: DeliveryEnvelope, recipients: string[], decidedAt?: string): DeliveryReport {
    if (run.accepted.length === 0) run.accepted = recipients;
    return this.finishMessage(run, message, envelope, undefined, [], decidedAt);
  }

  /** Applies end-of-message results and builds the report of a message that reached delivery or a verdict at EOM. */
  private finishMessage(run: MessageRun, message: MailMessage, envelope: DeliveryEnvelope, finalReply: StageReply | undefined, modifications: Modification[], decidedAt?: string): DeliveryReport {
    if (finalReply?.verdict === 'discard') return this.discarded(run, 'eom', modifications);
    if (finalReply !== undefined) {
      const outcome = this.profile.smtpOutcome('eom', finalReply);
      if (outcome.configurationError !== undefined) return this.configurationError(run, 'eom', outcome, modifications);
      return this.report(run, { verdict: outcome.verdict, smtpReply: outcome.reply, decidedAt: 'eom', modifications });
    }
    this.assignQueueId();
    const ownHeaders = this.profile.ownHeaders(this.state, run.accepted, this.options.date ?? new Date());
    const headers: HeaderEntry[] = [...ownHeaders, ...message.headers.map((field): HeaderEntry => ({ ...field, origin: 'message' }))];
    const leadingSpace = this.negotiated !== undefined && (this.negotiated.protocol & Protocol.HDR_LEADSPC) !== 0;
    const applied = applyModifications(this.profile, headers, message.body, envelope, modifications, leadingSpace);
    if (applied.configurationError !== undefined) {
      return this.configurationError(run, 'eom', { verdict: 'tempfail', reply: this.profile.configurationErrorReply, configurationError: applied.configurationError }, modifications);
    }
    const quarantine = applied.quarantine ?? run.quarantine;
    const data: Parameters<MtaSession['report']>[1] = {
      verdict: 'accept',
      smtpReply: this.profile.acceptedReply(this.state.queueId!),
      modifications,
      message: { headers: this.profile.deliveredFields(applied.message.headers), body: applied.message.body },
      envelope: applied.envelope,
    };
    if (decidedAt !== undefined) data.decidedAt = decidedAt;
    if (quarantine !== undefined) {
      // Held, not delivered: the message and envelope are what the MTA keeps in its quarantine.
      data.held = true;
      if (this.profile.keepsQuarantineReason) data.quarantine = quarantine;
    }
    return this.report(run, data);
  }

  private configurationError(run: MessageRun, stage: string, outcome: SmtpOutcome, modifications: Modification[] = []): DeliveryReport {
    return this.report(run, { verdict: outcome.verdict, smtpReply: outcome.reply, decidedAt: stage, configurationError: outcome.configurationError!, modifications });
  }

  /** The report of a message after a milter failure: the profile's default action. */
  private failed(run: MessageRun, message: MailMessage, envelope: DeliveryEnvelope): DeliveryReport {
    if (this.profile.defaultAction === 'accept') {
      const report = this.unfiltered(run, message, envelope, envelope.recipients.map((r) => r.address));
      report.error = this.failure!;
      return report;
    }
    return this.report(run, { verdict: this.profile.defaultAction, smtpReply: this.profile.defaultActionReply, error: this.failure! });
  }

  private recordFailure(error: unknown): void {
    if (!(error instanceof MilterClientError)) throw error;
    this.failure ??= error;
    this.connection.close();
  }

  private report(
    run: MessageRun,
    data: {
      verdict: MessageVerdict;
      smtpReply: string;
      decidedAt?: string;
      modifications?: Modification[];
      message?: MailMessage;
      envelope?: DeliveryEnvelope;
      held?: boolean;
      quarantine?: string;
      error?: Error;
      configurationError?: string;
    },
  ): DeliveryReport {
    const report = new DeliveryReport({
      profile: this.profile.name,
      stages: run.records,
      recipients: { accepted: data.verdict === 'reject' || data.verdict === 'tempfail' ? [] : run.accepted, rejected: run.rejected },
      modifications: [],
      held: false,
      ...data,
    });
    if (this.negotiated !== undefined) report.negotiated = summarizeNegotiation(this.negotiated);
    return report;
  }
}

/** The envelope of a message: given, or taken from its From:, To:, Cc: and Bcc: fields. */
export function resolveEnvelope(message: MailMessage, input: EnvelopeInput): DeliveryEnvelope {
  const fieldValues = (...names: string[]): string[] =>
    message.headers.filter((field) => names.includes(field.name.trim().toLowerCase())).map((field) => field.value);
  const from = input.from ?? addressesIn(fieldValues('from'))[0] ?? '';
  const recipientInputs = input.recipients ?? addressesIn(fieldValues('to', 'cc', 'bcc'));
  if (recipientInputs.length === 0) throw new MilterUsageError('no recipient: give one, or a message with To:, Cc: or Bcc:');
  const recipients = recipientInputs.map((recipient): EnvelopeRecipient => {
    if (typeof recipient === 'string') return { address: bracketAddress(recipient) };
    const entry: EnvelopeRecipient = { address: bracketAddress(recipient.address) };
    if (recipient.args !== undefined && recipient.args.length > 0) entry.args = recipient.args.join(' ');
    return entry;
  });
  const envelope: DeliveryEnvelope = { sender: from === '' || from === '<>' ? '<>' : bracketAddress(from), recipients };
  if (input.fromArgs !== undefined && input.fromArgs.length > 0) envelope.senderArgs = input.fromArgs.join(' ');
  return envelope;
}
