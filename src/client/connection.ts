/**
 * The MTA side of one milter connection, as a state machine with no I/O of its own: bytes go out
 * through a {@link ClientTransport} and come back through {@link MilterConnection.receive}. The same
 * engine drives a socket ({@link connectMilter}) or an in-process filter (the test kit).
 *
 * It honours the negotiated options the way Postfix and Sendmail do: commands the milter declined
 * (NO*) are not sent, but their macros are; replies are not awaited where the milter chose NR*;
 * body data goes in chunks of at most 65535 bytes; every packet at end of message is collected.
 */
import {
  Command,
  FrameError,
  codeName,
  FrameReader,
  Limits,
  MalformedPacketError,
  UnknownReplyError,
  decodeReply,
  encodeCommand,
  modificationTypes,
  text,
  stageBySmtp,
  type ConnectInfo,
  type NegotiationOffer,
  type SmtpStage,
  type MilterReply,
  type MtaCommand,
} from '../protocol/codec.js';
import { MilterConnectionError, MilterProtocolError, MilterTimeoutError, MilterUsageError, type MilterClientError } from './errors.js';
import { ModificationCollector, type Modification, type ModificationLimits } from './modifications.js';
import { DEFAULT_OFFER, readOptnegReply, type NegotiatedOptions, type NegotiationChecks } from './negotiation.js';

/** Where the engine's bytes go. */
export interface ClientTransport {
  /** Sends bytes to the milter. */
  write(data: Buffer): void;
  /** Ends the connection (after pending writes). */
  close(): void;
}

/** Commands the client sends that can have a reply: negotiation, then the stages by their SMTP names. */
export type ClientStage = 'negotiate' | SmtpStage;

/** Time limits in milliseconds, per kind of command (Postfix's names and defaults). */
export interface ClientTimeouts {
  /** OPTNEG, CONNECT, HELO, MAIL, RCPT, DATA, UNKNOWN (`milter_command_timeout`, 30 s). */
  command: number;
  /** HEADER, EOH, BODY (`milter_content_timeout`, 300 s). */
  content: number;
  /** Waiting for the final reply at end of message (default: the content timeout, as Postfix; Sendmail `T=E:` 5 min). */
  endOfMessage?: number;
  /** Whether each PROGRESS restarts the end-of-message timer (Postfix) or the limit is a total. */
  progressRestartsEndOfMessage: boolean;
  /**
   * A limit on the whole end of message that nothing extends (Sendmail `T=E:`, 5 min); with it,
   * `endOfMessage` is the wait for each packet (`T=R:`), restarted by every packet.
   */
  endOfMessageTotal?: number;
}

/** Default time limits: Postfix's. */
export const DEFAULT_TIMEOUTS: Readonly<ClientTimeouts> = Object.freeze({
  command: 30_000,
  content: 300_000,
  progressRestartsEndOfMessage: true,
});

/**
 * Replies that only some MTAs accept. All `false` (the default) is the strict reading of the
 * protocol, which is also Sendmail's; Postfix accepts all four.
 */
export interface ReplyLeniency {
  /** PROGRESS in reply to any command, not only end of message. */
  progressAnyStage: boolean;
  /** QUARANTINE in reply to any command (Postfix holds the message). */
  quarantineAnyStage: boolean;
  /** SKIP in reply to any command ("skip the rest of this kind"); SKIP at end of message means accept. */
  skipAnyStage: boolean;
  /** SHUTDOWN (`4`): reply 421 and close. */
  acceptShutdown: boolean;
}

/** Options of a client connection. */
export interface MilterClientOptions {
  /** What to offer in OPTNEG (defaults: version 6, all actions, all protocol bits). */
  offer?: Partial<NegotiationOffer>;
  /** Time limits. */
  timeouts?: Partial<ClientTimeouts>;
  /** Largest reply payload accepted (default 1 MiB); a larger one is an `OVERSIZED_PACKET` error. */
  maxReplyPayload?: number;
  /** Largest command payload sent (default: no limit, as Postfix; Sendmail refuses above 65535). */
  maxCommandPayload?: number;
  /** How much is collected at end of message before the exchange fails with `MODIFICATION_LIMIT` (default: 64 MiB, 100000 modifications). */
  modificationLimits?: Partial<ModificationLimits>;
  /** Size of body chunks, at most 65535 (the default). */
  bodyChunkSize?: number;
  /** Replies accepted beyond the strict protocol. */
  leniency?: Partial<ReplyLeniency>;
  /** How the OPTNEG reply is checked (default: strict). */
  negotiationChecks?: Partial<NegotiationChecks>;
}

/** Macros to send before a command: an object or name/value pairs, names as the MTA is configured (`j`, `{daemon_name}`). */
export type MacroValues = Readonly<Record<string, string>> | ReadonlyArray<readonly [string, string]>;

/** Options common to the commands. */
export interface CommandOptions {
  /** Macros sent (in a `D` packet) just before the command; omitted means no `D` packet. */
  macros?: MacroValues;
}

/** What a reply means for the MTA. */
export type ReplyVerdict = 'continue' | 'accept' | 'reject' | 'tempfail' | 'discard' | 'skip' | 'shutdown';

/** The outcome of one command. */
export interface StageReply {
  stage: ClientStage;
  /** False when the milter declined this command (NO*): it was not sent. */
  sent: boolean;
  /** False when no reply was read: not sent, or the milter chose not to reply (NR*). */
  awaited: boolean;
  /** The reply packet's type, when one was read. */
  reply?: MilterReply['type'];
  /** What the reply means. `continue` at end of message reads as `accept`; a REPLYCODE as `reject` or `tempfail` by its class. */
  verdict: ReplyVerdict;
  /** Text of a REPLYCODE (`y`) reply, as sent. */
  replyText?: string;
  /** PROGRESS packets received before the reply. */
  progress: number;
  /** Reason of a QUARANTINE received before the reply (Postfix accepts it at any stage). */
  quarantine?: string;
}

/** The outcome of end of message: the final reply and every modification before it. */
export interface EndOfMessageReply extends StageReply {
  stage: 'eom';
  modifications: Modification[];
}

const NOT_SENT = { sent: false, awaited: false, verdict: 'continue', progress: 0 } as const;

const contentStages: ReadonlySet<ClientStage> = new Set(['header', 'eoh', 'body']);

/** Where the conversation stands, for order checks. */
type Phase = 'new' | 'negotiated' | 'connected' | 'message' | 'closed';

interface PendingReply {
  stage: ClientStage;
  timeoutMs: number;
  /** When the whole wait ends whatever arrives (`endOfMessageTotal`), in `Date.now()` time. */
  deadline?: number;
  timer: NodeJS.Timeout | undefined;
  progress: number;
  quarantine?: string;
  collector?: ModificationCollector;
  resolve(reply: MilterReply): void;
  reject(error: Error): void;
}

/**
 * One conversation with a milter, from the MTA's side.
 *
 * @example
 * ```ts
 * const milter = await connectMilter('inet:8891@127.0.0.1');
 * await milter.negotiate();
 * await milter.connect({ hostname: 'mail.example.org', family: 'inet', address: '192.0.2.1', port: 4711 });
 * await milter.mail('<alice@example.org>');
 * await milter.rcpt('<bob@example.net>');
 * await milter.header('Subject', 'hello');
 * await milter.eoh();
 * await milter.body('Hi Bob\r\n');
 * const { verdict, modifications } = await milter.endOfMessage();
 * await milter.quit();
 * ```
 */
export class MilterConnection {
  private readonly reader: FrameReader;
  private readonly timeouts: Required<Omit<ClientTimeouts, 'endOfMessageTotal'>> & Pick<ClientTimeouts, 'endOfMessageTotal'>;
  private readonly leniency: ReplyLeniency;
  private readonly checks: NegotiationChecks;
  private readonly chunkSize: number;
  private readonly maxCommandPayload: number;
  private readonly offer: NegotiationOffer;
  private readonly modificationLimits: Partial<ModificationLimits>;
  private phase: Phase = 'new';
  private options: NegotiatedOptions | undefined;
  private pending: PendingReply | null = null;
  private failure: MilterClientError | undefined;
  /** The last command sent without waiting for a reply, to explain an unsolicited packet. */
  private lastUnawaited: ClientStage | undefined;
  /** The milter answered SKIP to a body chunk: no more body for this message. */
  private bodySkipped = false;
  /** Commands run one after the other even if the caller does not await each. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly transport: ClientTransport,
    options: MilterClientOptions = {},
  ) {
    this.reader = new FrameReader(options.maxReplyPayload);
    const timeouts = { ...DEFAULT_TIMEOUTS, ...options.timeouts };
    this.timeouts = { ...timeouts, endOfMessage: timeouts.endOfMessage ?? timeouts.content };
    this.leniency = { progressAnyStage: false, quarantineAnyStage: false, skipAnyStage: false, acceptShutdown: false, ...options.leniency };
    this.checks = { allowHigherVersion: false, ignoreUnofferedProtocol: false, ...options.negotiationChecks };
    this.offer = { ...DEFAULT_OFFER, ...options.offer };
    this.chunkSize = options.bodyChunkSize ?? Limits.CHUNK_SIZE;
    if (!Number.isInteger(this.chunkSize) || this.chunkSize < 1 || this.chunkSize > Limits.CHUNK_SIZE) {
      throw new MilterUsageError(`bodyChunkSize must be between 1 and ${Limits.CHUNK_SIZE}`);
    }
    this.maxCommandPayload = options.maxCommandPayload ?? Number.POSITIVE_INFINITY;
    this.modificationLimits = options.modificationLimits ?? {};
    for (const [name, value] of Object.entries(this.modificationLimits)) {
      if (!Number.isSafeInteger(value) || value < 1) throw new MilterUsageError(`modificationLimits.${name} must be a positive integer`);
    }
  }

  /** The negotiated options, once {@link negotiate} has succeeded. */
  get negotiated(): NegotiatedOptions | undefined {
    return this.options;
  }

  /** True once the connection is over: quit, closed by either side, or failed. */
  get closed(): boolean {
    return this.phase === 'closed';
  }

  /** The error that ended the connection, if it failed. */
  get error(): MilterClientError | undefined {
    return this.failure;
  }

  // ---- input from the transport ----

  /** Feeds bytes read from the milter. */
  receive(chunk: Buffer): void {
    if (this.failure !== undefined) return;
    try {
      this.reader.push(chunk, (code, payload) => this.onPacket(code, payload));
    } catch (error) {
      if (!(error instanceof FrameError)) throw error;
      const code = error.code === 'FRAME_TOO_LARGE' ? 'OVERSIZED_PACKET' : 'BAD_FRAME';
      this.fail(new MilterProtocolError(code, error.message, this.pending?.stage));
    }
  }

  /** The milter closed its end. */
  end(): void {
    if (this.failure !== undefined || this.phase === 'closed') return;
    if (this.pending !== null) {
      this.fail(new MilterConnectionError(`milter closed the connection before answering ${this.pending.stage}`, this.pending.stage));
      return;
    }
    this.phase = 'closed';
  }

  /** The transport failed (socket error). */
  transportError(cause: unknown): void {
    const message = cause instanceof Error ? cause.message : String(cause);
    this.fail(new MilterConnectionError(`milter connection failed: ${message}`, this.pending?.stage, { cause }));
  }

  // ---- commands ----

  /**
   * Sends OPTNEG and reads the milter's answer.
   * @param offer overrides of the offer given to the constructor
   * @throws MilterProtocolError `NEGOTIATION` if the answer is one the MTA would refuse
   */
  negotiate(offer: Partial<NegotiationOffer> = {}): Promise<NegotiatedOptions> {
    return this.serial(async () => {
      this.expectPhase('negotiate', ['new']);
      const full = { ...this.offer, ...offer };
      const reply = await this.request('negotiate', encodeCommand({ type: 'optneg', ...full })).promise;
      try {
        this.options = readOptnegReply(full, reply, this.checks);
      } catch (error) {
        this.fail(error as MilterProtocolError);
        throw error;
      }
      this.advance('negotiated');
      return this.options;
    });
  }

  /** Describes the SMTP client (CONNECT). */
  connect(client: ConnectInfo, options: CommandOptions = {}): Promise<StageReply> {
    return this.serial(async () => {
      this.expectPhase('connect', ['negotiated']);
      const command: MtaCommand<string> =
        client.family === 'unknown'
          ? { type: 'connect', hostname: client.hostname, family: 'unknown' }
          : { type: 'connect', hostname: client.hostname, family: client.family, address: client.address ?? '', port: client.port ?? 0 };
      const reply = await this.stage('connect', Command.CONNECT, command, options.macros);
      this.advance('connected');
      return reply;
    });
  }

  /** Sends the HELO/EHLO argument. */
  helo(name: string, options: CommandOptions = {}): Promise<StageReply> {
    return this.serial(async () => {
      this.expectPhase('helo', ['connected', 'message']);
      return this.stage('helo', Command.HELO, { type: 'helo', name }, options.macros);
    });
  }

  /** Starts a message: the sender as the client typed it (`<a@b>`, `<>`) and its ESMTP arguments. */
  mail(sender: string, options: CommandOptions & { args?: readonly string[] } = {}): Promise<StageReply> {
    return this.serial(async () => {
      this.expectPhase('mail', ['connected', 'message']);
      this.phase = 'message';
      this.bodySkipped = false;
      return this.stage('mail', Command.MAIL, { type: 'mail', args: [sender, ...(options.args ?? [])] }, options.macros);
    });
  }

  /** One recipient and its ESMTP arguments. */
  rcpt(recipient: string, options: CommandOptions & { args?: readonly string[] } = {}): Promise<StageReply> {
    return this.serial(async () => {
      this.expectPhase('rcpt', ['message']);
      return this.stage('rcpt', Command.RCPT, { type: 'rcpt', args: [recipient, ...(options.args ?? [])] }, options.macros);
    });
  }

  /** The DATA command (not sent to milters that answered version 2 or 3). */
  data(options: CommandOptions = {}): Promise<StageReply> {
    return this.serial(async () => {
      this.expectPhase('data', ['message']);
      return this.stage('data', Command.DATA, { type: 'data' }, options.macros);
    });
  }

  /**
   * One header field: the value as the MTA sends it (folding with LF, leading space per
   * HDR_LEADSPC); bytes are sent as they are (8-bit header data), strings as UTF-8.
   */
  header(name: string, value: string | Buffer, options: CommandOptions = {}): Promise<StageReply> {
    return this.serial(async () => {
      this.expectPhase('header', ['message']);
      return this.stage('header', Command.HEADER, { type: 'header', name, value }, options.macros);
    });
  }

  /** End of the header. */
  eoh(options: CommandOptions = {}): Promise<StageReply> {
    return this.serial(async () => {
      this.expectPhase('eoh', ['message']);
      return this.stage('eoh', Command.EOH, { type: 'eoh' }, options.macros);
    });
  }

  /**
   * Sends body data in chunks of at most 65535 bytes; the macros, if given, go before every chunk
   * (as Postfix does). Stops at the first reply other than `continue`; after SKIP, later body data
   * of this message is not sent.
   */
  body(data: Buffer | string, options: CommandOptions = {}): Promise<StageReply> {
    return this.serial(async () => {
      this.expectPhase('body', ['message']);
      const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
      let last: StageReply = { stage: 'body', ...NOT_SENT };
      if (this.bodySkipped) return last;
      for (let offset = 0; offset < bytes.length; offset += this.chunkSize) {
        const chunk = bytes.subarray(offset, offset + this.chunkSize);
        last = await this.stage('body', Command.BODY, { type: 'body', chunk }, options.macros);
        if (last.verdict === 'skip') this.bodySkipped = true;
        if (last.verdict !== 'continue') break;
      }
      return last;
    });
  }

  /** End of message: collects every modification, then the final reply. */
  endOfMessage(options: CommandOptions = {}): Promise<EndOfMessageReply> {
    return this.serial(async () => {
      this.expectPhase('eom', ['message']);
      if (options.macros !== undefined) this.send(encodeMacros(Command.BODYEOB, options.macros));
      const collector = new ModificationCollector(this.modificationLimits);
      const pending = this.request('eom', encodeCommand({ type: 'eob' }), collector);
      const reply = await pending.promise;
      const result = this.toStageReply('eom', reply, pending.state);
      if (result.verdict === 'continue' || (result.verdict === 'skip' && this.leniency.skipAnyStage)) result.verdict = 'accept';
      this.advance('connected');
      return { ...result, stage: 'eom', modifications: collector.finish() };
    });
  }

  /** An SMTP command the MTA did not recognise (not sent to milters that answered version 2). */
  unknown(line: string, options: CommandOptions = {}): Promise<StageReply> {
    return this.serial(async () => {
      this.expectPhase('unknown', ['connected', 'message']);
      return this.stage('unknown', Command.UNKNOWN, { type: 'unknown', line }, options.macros);
    });
  }

  /** Abandons the current message (ABORT; no reply). Connection data stays. */
  abort(): Promise<void> {
    return this.reset('abort', 'connected');
  }

  /** Ends the session: QUIT, then the connection is closed. Does nothing on a closed connection. */
  quit(): Promise<void> {
    return this.serial(async () => {
      if (this.phase === 'closed') return;
      if (this.phase !== 'new') this.send(encodeCommand({ type: 'quit' }));
      this.shutdown();
    });
  }

  /**
   * Ends the SMTP session but keeps the connection for the next one (QUIT_NC; no real MTA sends
   * it). The next command is {@link connect}; negotiation stays in force.
   */
  quitNewConnection(): Promise<void> {
    return this.reset('quitNc', 'negotiated');
  }

  /** ABORT or QUIT_NC: no reply, message state dropped. */
  private reset(command: 'abort' | 'quitNc', next: Phase): Promise<void> {
    return this.serial(async () => {
      this.expectPhase(command, ['connected', 'message']);
      this.send(encodeCommand({ type: command }));
      this.lastUnawaited = undefined;
      this.bodySkipped = false;
      this.advance(next);
    });
  }

  /** Closes the connection without QUIT (what Postfix does after a connection-level verdict). */
  close(): void {
    if (this.phase === 'closed') return;
    this.shutdown();
  }

  // ---- internals ----

  private shutdown(): void {
    this.phase = 'closed';
    this.transport.close();
  }

  /**
   * Moves to the next phase after a command, unless the connection ended meanwhile: the milter
   * may close between its reply and the moment the command's continuation runs, and a closed
   * connection must stay closed.
   */
  private advance(next: Phase): void {
    if (this.phase !== 'closed') this.phase = next;
  }

  private serial<T>(task: () => Promise<T>): Promise<T> {
    const run = this.queue.then(task);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private expectPhase(command: string, allowed: readonly Phase[]): void {
    if (this.failure !== undefined) throw this.failure;
    if (this.phase === 'closed') throw new MilterConnectionError(`cannot send ${command}: the milter connection is closed`, command);
    if (!allowed.includes(this.phase)) {
      throw new MilterUsageError(`cannot send ${command} now (${describePhase(this.phase)}); allowed ${allowed.map(describePhase).join(' or ')}`);
    }
  }

  /** Sends a command with its macros, honouring NO* and NR*. */
  private async stage(stage: Exclude<ClientStage, 'negotiate' | 'eom'>, code: number, command: MtaCommand<string | Buffer>, macros: MacroValues | undefined): Promise<StageReply> {
    // Both MTAs send the macros of a stage even when its command is not sent.
    if (macros !== undefined) this.send(encodeMacros(code, macros));
    const protocol = this.options!.protocol;
    const bits = stageBySmtp[stage];
    if (protocol & bits.no) return { stage, ...NOT_SENT };
    const frame = encodeCommand(command);
    if (protocol & bits.noReply) {
      this.send(frame);
      this.lastUnawaited = stage;
      return { stage, sent: true, awaited: false, verdict: 'continue', progress: 0 };
    }
    const pending = this.request(stage, frame);
    const reply = await pending.promise;
    return this.toStageReply(stage, reply, pending.state);
  }

  private toStageReply(stage: ClientStage, reply: MilterReply, state: PendingReply): StageReply {
    const result: StageReply = { stage, sent: true, awaited: true, reply: reply.type, verdict: verdictOf(reply), progress: state.progress };
    if (reply.type === 'replyCode') result.replyText = text(reply.text);
    if (state.quarantine !== undefined) result.quarantine = state.quarantine;
    return result;
  }

  private send(frame: Buffer): void {
    // Checked before every write, not only when a command starts: the connection can end between
    // the chunks of a body, or while the macros of a command are written.
    if (this.phase === 'closed') throw this.failure ?? new MilterConnectionError('cannot write: the milter connection is closed');
    if (frame.length - 5 > this.maxCommandPayload) {
      throw new MilterUsageError(`a ${frame.length - 5}-byte command exceeds this MTA's packet limit of ${this.maxCommandPayload} bytes`);
    }
    this.transport.write(frame);
  }

  /** Writes a command and waits for its reply (with the stage's timeout). */
  private request(stage: ClientStage, frame: Buffer, collector?: ModificationCollector): { promise: Promise<MilterReply>; state: PendingReply } {
    let state!: PendingReply;
    const promise = new Promise<MilterReply>((resolve, reject) => {
      state = {
        stage,
        timeoutMs: stage === 'eom' ? this.timeouts.endOfMessage : contentStages.has(stage) ? this.timeouts.content : this.timeouts.command,
        timer: undefined,
        progress: 0,
        resolve,
        reject,
      };
      if (collector !== undefined) state.collector = collector;
      if (stage === 'eom' && this.timeouts.endOfMessageTotal !== undefined) state.deadline = Date.now() + this.timeouts.endOfMessageTotal;
    });
    // Pending before writing: an in-process milter may answer during write().
    this.pending = state;
    this.lastUnawaited = undefined;
    this.armTimer(state);
    try {
      this.send(frame);
    } catch (error) {
      this.clearPending(state);
      throw error;
    }
    return { promise, state };
  }

  private armTimer(state: PendingReply): void {
    if (state.timer !== undefined) clearTimeout(state.timer);
    const left = state.deadline === undefined ? state.timeoutMs : Math.min(state.timeoutMs, state.deadline - Date.now());
    state.timer = setTimeout(() => this.expire(state), Math.max(left, 0));
  }

  /** The reply timer ran out: the command fails even if the connection already failed otherwise. */
  private expire(state: PendingReply): void {
    const total = state.deadline !== undefined && Date.now() >= state.deadline;
    const timeout = new MilterTimeoutError(state.stage, total ? this.timeouts.endOfMessageTotal! : state.timeoutMs);
    if (this.failure === undefined) this.fail(timeout);
    else this.abandon(state, this.failure);
  }

  /** Fails one command that waits for a reply. */
  private abandon(state: PendingReply, error: MilterClientError): void {
    this.clearPending(state);
    state.reject(error);
  }

  private clearPending(state: PendingReply): void {
    if (state.timer !== undefined) clearTimeout(state.timer);
    state.timer = undefined;
    if (this.pending === state) this.pending = null;
  }

  private onPacket(code: number, payload: Buffer): void {
    if (this.failure !== undefined) return;
    const pending = this.pending;
    if (pending === null) {
      const why = this.lastUnawaited === undefined ? 'no command was waiting for one' : `${this.lastUnawaited} was negotiated as no-reply`;
      this.fail(new MilterProtocolError('UNSOLICITED_REPLY', `milter sent a packet (${codeName(code)}) although ${why}`));
      return;
    }
    let reply: MilterReply;
    try {
      reply = decodeReply(code, payload);
    } catch (error) {
      if (error instanceof UnknownReplyError) this.fail(new MilterProtocolError('UNKNOWN_REPLY', error.message, pending.stage));
      else if (error instanceof MalformedPacketError) this.fail(new MilterProtocolError('MALFORMED_REPLY', error.message, pending.stage));
      else throw error;
      return;
    }
    const problem = this.accept(pending, reply, payload.length);
    if (problem !== undefined) this.fail(problem);
  }

  /** Applies one reply to the pending command; returns the error if the reply is not allowed. */
  private accept(pending: PendingReply, reply: MilterReply, payloadBytes: number): MilterProtocolError | undefined {
    const stage = pending.stage;
    const unexpected = (): MilterProtocolError => new MilterProtocolError('UNEXPECTED_REPLY', `milter sent ${reply.type} where the protocol does not allow it`, stage);
    if (stage === 'negotiate') {
      if (reply.type !== 'optneg') return new MilterProtocolError('NEGOTIATION', `milter answered OPTNEG with ${reply.type}`, stage);
      return this.settle(pending, reply);
    }
    // With a total limit, every packet restarts the wait for the next one (Sendmail's T=R:).
    if (pending.deadline !== undefined) this.armTimer(pending);
    if (reply.type === 'progress') {
      if (stage !== 'eom' && !this.leniency.progressAnyStage) return unexpected();
      pending.progress++;
      if (stage !== 'eom' || this.timeouts.progressRestartsEndOfMessage) this.armTimer(pending);
      return undefined;
    }
    if (modificationTypes.has(reply.type)) {
      if (pending.collector !== undefined) return pending.collector.add(reply, payloadBytes);
      if (reply.type === 'quarantine' && this.leniency.quarantineAnyStage) {
        pending.quarantine = text(reply.reason);
        return undefined;
      }
      return new MilterProtocolError('MODIFICATION_OUTSIDE_EOM', `milter sent ${reply.type}, a modification, in reply to ${stage}`, stage);
    }
    switch (reply.type) {
      case 'optneg':
      case 'connFail':
        return unexpected();
      case 'shutdown':
        return this.leniency.acceptShutdown ? this.settle(pending, reply) : unexpected();
      case 'skip':
        return stage === 'body' || this.leniency.skipAnyStage ? this.settle(pending, reply) : unexpected();
      default:
        return this.settle(pending, reply);
    }
  }

  private settle(pending: PendingReply, reply: MilterReply): undefined {
    this.clearPending(pending);
    pending.resolve(reply);
    return undefined;
  }

  /** Ends the connection on an error; the pending command (if any) fails with it. */
  private fail(error: MilterClientError): void {
    if (this.failure !== undefined) return;
    this.failure = error;
    if (this.pending !== null) this.abandon(this.pending, error);
    if (this.phase !== 'closed') this.shutdown();
  }
}

function verdictOf(reply: MilterReply): ReplyVerdict {
  switch (reply.type) {
    case 'continue':
    case 'accept':
    case 'reject':
    case 'tempfail':
    case 'discard':
    case 'skip':
    case 'shutdown':
      return reply.type;
    case 'replyCode':
      return reply.text[0] === 0x34 /* '4' */ ? 'tempfail' : 'reject';
    default:
      return 'continue';
  }
}

/** Encodes a `D` packet for the command `code`. */
export function encodeMacros(code: number, macros: MacroValues): Buffer {
  const pairs = Array.isArray(macros) ? (macros as ReadonlyArray<readonly [string, string]>) : Object.entries(macros);
  return encodeCommand({ type: 'macro', stage: code, macros: pairs.map(([name, value]) => [name, value] as [string, string]) });
}

function describePhase(phase: Phase): string {
  switch (phase) {
    case 'new':
      return 'before negotiation';
    case 'negotiated':
      return 'before CONNECT';
    case 'connected':
      return 'between messages';
    case 'message':
      return 'inside a message';
    case 'closed':
      return 'after the end';
  }
}
