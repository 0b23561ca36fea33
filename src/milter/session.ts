/**
 * The milter-side session: one state machine per MTA connection, driven by the bytes the MTA
 * sends and answering through a write function. It knows nothing of sockets, so the server, the
 * offline test kit and the tests all drive the same code.
 *
 * Synchronous callbacks are answered without allocating promises; while an asynchronous
 * callback runs, later packets wait in a bounded queue (the MTA pipelines headers when it was
 * told not to wait for their replies).
 */
// Imported, not the global: Node's global `Buffer` is a getter, called at every use in hot code.
import { Buffer } from 'node:buffer';
import {
  Command,
  FrameReader,
  MalformedPacketError,
  NegotiationError,
  Protocol,
  codeName,
  copyOf,
  cStringTexts,
  splitCStrings,
  decodeCommand,
  decodeConnect,
  decodeOptneg,
  headerNameEnd,
  utf8Text,
  encodeReply,
  replyPayloadSize,
  stageByCallback,
  negotiate,
  replyCodeClass,
  simpleReplyFrames,
  type AddressFamily,
  type Bytes,
  type ConnectInfo,
  type Modification,
  type NegotiationResult,
  type StageRow,
} from '../protocol/codec.js';
import { isIPv6 } from 'node:net';
import { childLogger, silentLogger, type Logger } from '../log.js';
import { EndOfMessage } from './eom.js';
import { ActionArgumentError } from './errors.js';
import { allOptionsRequest, compileFilter, negotiationRequest, optionsOf, type CompiledFilter } from './filter.js';
import { MacroStore } from './macros.js';
import { PacketQueue } from './packet-queue.js';
import { resolveSessionOptions, type ErrorVerdict, type ResolvedSessionOptions, type SessionIO, type SessionOptions } from './session-options.js';

export type { ErrorVerdict, SessionIO, SessionOptions };
import { Milter, sessionAccess, type BodySource, type SessionAccess } from './milter.js';
import { headerName } from './header-names.js';
import type { CallbackResult, StageName, Verdict } from './types.js';

type Phase = 'negotiate' | 'open' | 'closing' | 'closed';
/** Callbacks answered with a verdict. */
type RepliedStage = StageName | 'eom';

/**
 * The stage table's rows, each read by its name where a callback runs: a reply then finds its
 * stage's no-reply bit in the row it was handed, not by a lookup under a name that differs from
 * call to call (a megamorphic keyed load for every reply).
 */
const stages = stageByCallback;

const verdicts: ReadonlySet<Verdict> = new Set<Verdict>(['continue', 'accept', 'reject', 'tempfail', 'discard', 'skip', 'noreply']);

/** Serves a connection whose filter could not be made: it asks for CONNECT so the error verdict is given early. */
class UnavailableFilter extends Milter {
  override connect(): void {}
}

const messageStages: ReadonlySet<RepliedStage> = new Set(['envfrom', 'envrcpt', 'data', 'header', 'eoh', 'body', 'eom']);
const EMPTY: readonly Buffer[] = [];
const EMPTY_FRAME = Buffer.alloc(0);
/** Replies per read whose list a session keeps between reads (a message has about 20 round trips). */
const MAX_KEPT_REPLIES = 64;

/** A filter callback, whatever its parameters. */
type StageCallback = (...args: never[]) => CallbackResult;

/**
 * Commands whose payloads the session decodes, compares or copies where they lie (the frame
 * reader hands them in place) and never hands to a filter as they are: all but the body chunks
 * (BODY, and BODYEOB's rare data), which a filter receives as Buffers.
 */
const IN_PLACE_CODES = Object.values(Command).filter((code) => code !== Command.BODY && code !== Command.BODYEOB);

function isPromise<T>(value: unknown): value is Promise<T> {
  return value !== null && typeof value === 'object' && typeof (value as { then?: unknown }).then === 'function';
}

/**
 * A client address as filters want it: without Sendmail's `IPv6:` prefix or brackets, and IPv6 in
 * its canonical short form (Sendmail may send `0:0:0:0:0:0:0:1` where Postfix sends `::1`).
 */
export function bareAddress(address: string): string {
  let a = address;
  if (a.startsWith('[') && a.endsWith(']')) a = a.slice(1, -1);
  if (a.length > 5 && a.slice(0, 5).toLowerCase() === 'ipv6:') a = a.slice(5);
  if (a.includes(':') && isIPv6(a)) {
    // The WHATWG URL parser serialises IPv6 hosts in RFC 5952 form.
    a = new URL(`http://[${a}]/`).hostname.slice(1, -1);
  }
  return a;
}

/** Queued replies are written once they reach this size, even in the middle of a read. */
const WRITE_BATCH_BYTES = 65536;

/**
 * The OPTNEG reply encoded last, and what it answered: every connection from one MTA to one filter
 * negotiates alike, so the reply is encoded once rather than per connection.
 */
let lastNegotiation: { version: number; actions: number; protocol: number; reply: Buffer } | undefined;

/** The OPTNEG reply for `result`; one that names macros (rare) is encoded each time. */
function negotiationReply(result: NegotiationResult): Buffer {
  const { version, actions, protocol, macros } = result;
  if (macros !== undefined) return encodeReply({ type: 'optneg', version, actions, protocol, macros });
  const last = lastNegotiation;
  if (last?.version === version && last.actions === actions && last.protocol === protocol) return last.reply;
  const reply = encodeReply({ type: 'optneg', version, actions, protocol });
  lastNegotiation = { version, actions, protocol, reply };
  return reply;
}

/** `bytes[start, end)` as a Buffer of its own length: `bytes` itself when that is all of it. */
function exactly(bytes: Buffer, start: number, end: number): Buffer {
  if (start === end) return EMPTY_FRAME;
  return start === 0 && end === bytes.length ? bytes : bytes.subarray(start, end);
}

let nextSessionId = 1;

/** Options checked and filter compiled, per options object. */
const preparedOptions = new WeakMap<SessionOptions, { resolved: ResolvedSessionOptions; filter: CompiledFilter }>();

function prepare(options: SessionOptions): { resolved: ResolvedSessionOptions; filter: CompiledFilter } {
  let prepared = preparedOptions.get(options);
  if (prepared === undefined) {
    prepared = { resolved: resolveSessionOptions(options), filter: compileFilter(options.filter) };
    preparedOptions.set(options, prepared);
  }
  return prepared;
}

/** One MTA connection, milter side. */
export class MilterSession implements SessionAccess {
  readonly id: number;
  readonly logger: Logger;
  /** The connection's macros while the session is open; handed on to a later session once it closes. */
  private liveMacros: MacroStore | undefined = MacroStore.forSession();
  readonly closed: Promise<void>;

  private readonly filter: CompiledFilter;
  private readonly reader: FrameReader;
  private readonly errorVerdict: ErrorVerdict;
  private readonly callbackTimeout: number;
  private readonly progressInterval: number;
  private readonly shadow: boolean;
  private milter: Milter;
  private phase: Phase = 'negotiate';
  private negotiated: NegotiationResult | undefined;

  /**
   * Replies not yet written (the first `outCount` of `out`), and their size: written together once
   * the read is handled. The list is kept and overwritten, not emptied, so it is not reallocated.
   */
  private readonly out: Buffer[] = [];
  private outCount = 0;
  private outBytes = 0;
  /** Raw arguments of the running callback, unless they are still uncut in {@link rawPacket}. */
  private rawArgs: readonly Buffer[] = EMPTY;
  /**
   * The buffer holding the running callback's packet (perhaps the read buffer), and where the
   * packet lies in it, when its raw arguments are cut only if the filter asks: a header's, or
   * MAIL's or RCPT's argv.
   */
  private rawPacket: Buffer | undefined;
  private rawStart = 0;
  private rawEnd = 0;
  /** Where the header's name ends in the packet; 0 when the packet is an argv (a name is never empty). */
  private rawHeaderNameEnd = 0;
  private readonly queue: PacketQueue;
  private busy = false;
  private eof = false;
  private resolveClosed!: () => void;

  /** Name of the callback running now. */
  stage = 'negotiate';
  /**
   * Reads from the MTA so far. A transport that enforces an idle timeout notes when this last
   * changed, on its own clock, so a read costs no call for the time.
   */
  reads = 0;
  private inMessage = false;
  /** The filter's constructor or factory threw: every command is answered with the error verdict. */
  private filterUnavailable = false;
  /** {@link terminate} was called: the session ends once the running callback returns. */
  private terminating = false;
  /** A callback failed where no reply could be sent: the next reply of this message carries the error verdict. */
  private pendingFailure = false;
  private replyText: string | undefined;
  private eomState: EndOfMessage | undefined;
  /** Verdict and failure of the pieces of the body packet being received. */
  private pieceVerdict: Verdict | void | undefined;
  private pieceFailed = false;
  /** The read being framed lives in a buffer the transport reuses (see {@link receive}). */
  private borrowedRead = false;
  /** The filter keeps body chunks past body(): a borrowed one is copied for it. */
  private bodyKept = false;
  /** Callback deadlines and progress heartbeats, made with the first: cleared when the session ends. */
  private timers: Set<NodeJS.Timeout> | undefined;

  /**
   * @param id connection number for logs; default `options.id`, else the next number. A server
   *   passes the same `options` object to every session, so it is checked once, not per connection.
   */
  constructor(
    options: SessionOptions,
    private readonly io: SessionIO,
    id: number | undefined = options.id,
  ) {
    this.id = id ?? nextSessionId++;
    this.logger = childLogger(options.logger ?? silentLogger, { conn: this.id });
    const prepared = prepare(options);
    this.filter = prepared.filter;
    const resolved = prepared.resolved;
    // Every payload but a body chunk's is decoded, compared or copied here, never handed to the
    // filter as it is, so it is read where it lies.
    this.reader = new FrameReader(resolved.maxPayload, Command.BODY, { inPlaceCodes: IN_PLACE_CODES });
    this.errorVerdict = resolved.errorVerdict;
    this.callbackTimeout = resolved.callbackTimeout;
    this.progressInterval = resolved.progressInterval;
    this.queue = new PacketQueue(resolved.maxQueuedBytes, io);
    this.shadow = resolved.shadow;
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
    this.milter = this.newMilter();
  }

  /** The macros the MTA sent on this connection; none once the session has closed. */
  get macros(): MacroStore {
    return this.liveMacros ?? MacroStore.none;
  }

  /** True when no callback runs and no packet waits: everything received has been answered. */
  get idle(): boolean {
    return !this.busy && this.queue.length === 0;
  }

  /**
   * When the first byte of the packet still incomplete arrived, for a transport's packet
   * deadline; undefined between packets. Trickled bytes of the same packet do not move it.
   */
  packetStartedAt: number | undefined;

  /** True while part of a packet has arrived and the rest has not (for packet deadlines). */
  get insidePacket(): boolean {
    return this.reader.buffered > 0;
  }

  /** True once the session has ended. */
  get isClosed(): boolean {
    return this.phase === 'closed';
  }

  // ---- SessionAccess (what the filter's actions use) ----

  get inEom(): boolean {
    return this.eomState !== undefined && this.eomState.open;
  }
  get version(): number {
    return this.negotiated?.version ?? 0;
  }
  get actions(): number {
    return this.negotiated?.actions ?? 0;
  }
  get protocol(): number {
    return this.negotiated?.protocol ?? 0;
  }
  get maxPayload(): number {
    return this.negotiated?.maxPayload ?? 65535;
  }
  modify(modification: Modification<Bytes>): void {
    const size = replyPayloadSize(modification);
    if (size > this.maxPayload) {
      throw new ActionArgumentError(`${modification.type}: a packet of ${size} payload bytes exceeds the ${this.maxPayload} bytes the MTA accepts`);
    }
    this.eomState!.modify(modification, size);
  }
  replaceBody(source: BodySource): void {
    this.eomState!.replaceBody(source);
  }
  progress(): void {
    if (!this.running) return;
    this.flush();
    this.io.write(simpleReplyFrames.progress);
  }
  setReply(text: string): void {
    this.replyText = text;
  }

  // ---- input ----

  /**
   * Bytes received from the MTA.
   * @param borrowed `chunk` is a read buffer the transport overwrites once this returns: whatever
   *   may outlive the call (a queued packet, macros, raw arguments, a body chunk the filter could
   *   keep) is copied; a body packet the filter has no callback for, or borrows (`borrowedBody`),
   *   is read in place.
   * @param length bytes of `chunk` that were read (default all), so a read buffer needs no view.
   */
  receive(chunk: Buffer, borrowed = false, length: number = chunk.length): void {
    if (this.phase === 'closed' || this.phase === 'closing') return;
    this.reads++;
    this.borrowedRead = borrowed;
    try {
      this.reader.push(chunk, this.onFrame, length);
    } catch (err) {
      this.fail(err);
    }
    this.borrowedRead = false;
    if (this.reader.buffered === 0) this.packetStartedAt = undefined;
    else this.packetStartedAt ??= Date.now();
    this.flush();
  }

  /** The MTA closed its side of the connection. */
  end(): void {
    if (this.eof) return;
    this.eof = true;
    try {
      this.reader.end();
    } catch (err) {
      this.logger.warn({ err }, 'MTA closed the connection inside a packet');
    }
    if (!this.busy && this.queue.length === 0) void this.shutdown('MTA closed the connection');
  }

  /** Neither closing nor closed. */
  private get running(): boolean {
    return this.phase !== 'closed' && this.phase !== 'closing';
  }


  /**
   * Ends the session from outside (timeout, transport error, server closing): abort and close
   * run, then the connection closes. A callback still running is waited for, unless `force`:
   * then it is abandoned and whatever it does later is dropped.
   */
  terminate(reason: string, force = false): void {
    if (this.phase === 'closed' || this.phase === 'closing') return;
    this.logger.warn({ reason }, 'ending session');
    this.queue.clear();
    this.eof = true;
    this.terminating = true;
    if (!this.busy || force) void this.shutdown(reason);
  }

  /** A packet is `bytes[start, end)` (see {@link FrameReader}'s in-place payloads). */
  private readonly onFrame = (code: number, bytes: Buffer, more: boolean, start: number, end: number): void => {
    // A fatal error earlier in the same read closed the session: the rest of the read is dropped.
    if (!this.running) return;
    if (this.busy || this.queue.length > 0) {
      this.queue.push(code, this.borrowedRead ? copyOf(bytes, start, end) : exactly(bytes, start, end), more);
      return;
    }
    // A header, MAIL and RCPT are decoded where they lie, macros are copied only when new, and a
    // body chunk is read in place unless the filter keeps chunks.
    const kept = code === Command.BODY ? this.bodyKept : code !== Command.HEADER && code !== Command.MACRO && code !== Command.MAIL && code !== Command.RCPT;
    if (this.borrowedRead && kept && end > start) this.dispatch(code, copyOf(bytes, start, end), more, 0, end - start);
    else this.dispatch(code, bytes, more, start, end);
  };

  private readonly dispatchPacket = (code: number, payload: Buffer, more: boolean): void => this.dispatch(code, payload, more, 0, payload.length);

  private dispatch(code: number, bytes: Buffer, more: boolean, start: number, end: number): void {
    let pending: void | Promise<void>;
    try {
      pending = this.handle(code, bytes, more, start, end);
    } catch (err) {
      this.fail(err);
      return;
    }
    if (pending !== undefined) {
      this.busy = true;
      pending.then(this.afterAsync, (err: unknown) => {
        this.busy = false;
        this.fail(err);
      });
    }
  }

  private readonly afterAsync = (): void => {
    this.busy = false;
    if (this.phase === 'closed') return;
    while (!this.busy && this.queue.length > 0 && this.running) this.queue.shift(this.dispatchPacket);
    this.flush();
    if (!this.busy && this.queue.length === 0 && this.eof && this.running) {
      void this.shutdown('MTA closed the connection');
    }
  };

  // ---- output ----

  private send(frame: Buffer): void {
    // Once closing, nothing more is answered (a late async callback, a protocol error).
    if (!this.running) return;
    this.out[this.outCount++] = frame;
    this.outBytes += frame.length;
    // One read may hold thousands of packets: their replies go out in batches as they come, so
    // neither the list nor the memory held for it grows with the read.
    if (this.outBytes >= WRITE_BATCH_BYTES) this.flush();
  }

  /**
   * Writes the replies queued since the last flush with one write: a lone frame as it is (the
   * common replies are shared constants), several copied into one buffer.
   */
  private flush(): void {
    const count = this.outCount;
    if (count === 0) return;
    const frames = this.out;
    let data = frames[0]!;
    if (count > 1) {
      data = Buffer.allocUnsafe(this.outBytes);
      let offset = 0;
      for (let i = 0; i < count; i++) offset += frames[i]!.copy(data, offset);
    }
    this.clearOutput();
    this.io.write(data);
  }

  /**
   * Empties the list of replies. A list that grew long (a read of thousands of packets) is let go
   * rather than kept for the life of the connection; a short one keeps its place, and large
   * frames (header edits, body replacements) are not kept alive by it.
   */
  private clearOutput(): void {
    if (this.out.length > MAX_KEPT_REPLIES) this.out.length = 0;
    else for (let i = 0; i < this.outCount; i++) this.out[i] = EMPTY_FRAME;
    this.outCount = 0;
    this.outBytes = 0;
  }

  // ---- commands ----

  /**
   * Every command but five is decoded by the codec. Body chunks are streamed as views of the read
   * (a packet may arrive in pieces), macros are kept raw until a filter reads one, and a header,
   * MAIL and RCPT are decoded without a command object. The packet is `bytes[start, end)`: a body
   * chunk's is all of `bytes`.
   */
  private handle(code: number, bytes: Buffer, more: boolean, start: number, end: number): void | Promise<void> {
    if (this.phase === 'negotiate' && code !== Command.OPTNEG) {
      throw new MalformedPacketError(`expected OPTNEG first, got ${codeName(code)}`);
    }
    if (code === Command.BODY) return this.onBody(bytes, more);
    if (code === Command.MACRO) return this.liveMacros!.store(bytes, start, end);
    if (code === Command.HEADER) {
      // The most frequent command, read where it lies (it may be in the read buffer): the name found
      // among those seen before, the value decoded, and the raw fields cut only if the filter asks.
      const nameEnd = headerNameEnd(bytes, start, end);
      this.beginMessage(false);
      this.keepRawPacket(bytes, start, end, nameEnd - start);
      return this.run(stages.header, this.milter.header, headerName(bytes, start, nameEnd), utf8Text(bytes, nameEnd + 1, end - 1));
    }
    if (code === Command.MAIL) return this.onEnvelope(true, bytes, start, end);
    if (code === Command.RCPT) return this.onEnvelope(false, bytes, start, end);
    // Once per connection each: decoded straight, without the command object decodeCommand spreads them into.
    if (code === Command.OPTNEG) return this.onOptneg(decodeOptneg(exactly(bytes, start, end)));
    if (code === Command.CONNECT) return this.onConnect(decodeConnect(exactly(bytes, start, end)));
    const command = decodeCommand(code, exactly(bytes, start, end));
    switch (command.type) {
      case 'helo':
        this.rawArgs = [command.name];
        return this.run(stages.helo, this.milter.helo, utf8Text(command.name, 0, command.name.length));
      case 'data':
        this.beginMessage(false);
        return this.run(stages.data, this.milter.data);
      case 'eoh':
        this.beginMessage(false);
        return this.run(stages.eoh, this.milter.eoh);
      case 'eob':
        return this.onEndOfMessage(command.chunk);
      case 'unknown':
        this.rawArgs = [command.line];
        return this.run(stages.unknown, this.milter.unknown, command.line.toString('utf8'));
      case 'abort':
        return this.onAbort();
      case 'quit':
        return this.shutdown('QUIT');
      case 'quitNc':
        return this.onQuitNewConnection();
      default:
        // BODY, MACRO, HEADER, MAIL and RCPT were handled above; the codec types them for the MTA side.
        throw new MalformedPacketError(`unexpected ${codeName(code)}`);
    }
  }

  /**
   * MAIL or RCPT, read where it lies: the address and its ESMTP arguments decoded as text, the
   * argv cut from the packet only if the filter asks for it raw.
   */
  private onEnvelope(isMail: boolean, bytes: Buffer, start: number, end: number): void | Promise<void> {
    const texts = cStringTexts(bytes, isMail ? 'MAIL' : 'RCPT', start, end);
    this.beginMessage(isMail);
    this.keepRawPacket(bytes, start, end, 0);
    const address = texts[0]!;
    const esmtpArgs = texts.slice(1);
    return isMail ? this.run(stages.envfrom, this.milter.envfrom, address, esmtpArgs) : this.run(stages.envrcpt, this.milter.envrcpt, address, esmtpArgs);
  }

  private onOptneg(command: { version: number; actions: number; protocol: number }): void | Promise<void> {
    if (this.phase !== 'negotiate') throw new MalformedPacketError('second OPTNEG on one connection');
    const offer = { version: command.version, actions: command.actions, protocol: command.protocol };
    const request = negotiationRequest(this.milter);
    this.stage = 'negotiate';
    const custom = this.milter.negotiate?.(offer, request);
    const finish = (answer: Awaited<typeof custom>): void => {
      if (answer === 'reject') {
        this.logger.info({ offer }, 'filter refused the MTA at negotiation');
        void this.shutdown('negotiation refused by the filter');
        return;
      }
      const chosen = answer === 'all-options' ? allOptionsRequest(this.milter, offer.protocol) : typeof answer === 'object' && answer !== null ? answer : request;
      let result: NegotiationResult;
      try {
        result = negotiate(offer, chosen);
      } catch (err) {
        if (!(err instanceof NegotiationError)) throw err;
        this.logger.error({ offer }, `negotiation failed: ${err.message}`);
        void this.shutdown('negotiation failed');
        return;
      }
      this.negotiated = result;
      this.phase = 'open';
      this.send(negotiationReply(result));
      this.logger.debug({ version: result.version, actions: result.actions, protocol: result.protocol }, 'negotiated');
    };
    if (isPromise<Awaited<typeof custom>>(custom)) return this.guard('negotiate', custom).then(finish);
    finish(custom);
  }

  private onConnect(info: ConnectInfo<Buffer>): void | Promise<void> {
    this.rawArgs = info.address === undefined ? [info.hostname] : [info.hostname, info.address];
    const address = info.address === undefined ? undefined : bareAddress(utf8Text(info.address, 0, info.address.length));
    return this.run(stages.connect, this.milter.connect, utf8Text(info.hostname, 0, info.hostname.length), info.family as AddressFamily, address, info.port);
  }

  /** Marks a message as started; a MAIL always starts a new one. */
  private beginMessage(isMail: boolean): void {
    if (isMail) {
      this.pendingFailure = false;
    }
    this.inMessage = true;
  }

  /** Ends the message for this filter (final verdict given, or ABORT). */
  private endMessage(): void {
    this.inMessage = false;
    this.replyText = undefined;
    this.liveMacros?.endMessage();
  }

  private onAbort(): void | Promise<void> {
    this.liveMacros?.clearMessage();
    this.replyText = undefined;
    this.pendingFailure = false;
    if (!this.inMessage) return;
    this.inMessage = false;
    return this.runQuiet('abort');
  }

  private onQuitNewConnection(): void | Promise<void> {
    const done = (): void => {
      if (!this.running) return;
      this.liveMacros?.clear();
      this.milter = this.newMilter();
      this.stage = 'connect';
    };
    const pending = this.closeFilter();
    if (pending) return pending.then(done);
    done();
  }

  /**
   * A filter instance for the connection. When the filter's constructor or factory throws, only
   * this connection fails: a stand-in takes the commands and each is answered with the error
   * verdict.
   */
  private newMilter(): Milter {
    let milter: Milter;
    try {
      milter = this.filter.create();
      this.filterUnavailable = false;
    } catch (err) {
      this.callbackFailed('constructor', err);
      milter = new UnavailableFilter();
      this.filterUnavailable = true;
    }
    milter[sessionAccess] = this;
    this.bodyKept = milter.body !== undefined && optionsOf(milter).borrowedBody !== true;
    return milter;
  }

  // ---- callbacks ----

  /** Notes the running callback's packet, `bytes[start, end)`, to cut its raw arguments from if asked. */
  private keepRawPacket(bytes: Buffer, start: number, end: number, headerNameEnd: number): void {
    this.rawPacket = bytes;
    this.rawStart = start;
    this.rawEnd = end;
    this.rawHeaderNameEnd = headerNameEnd;
  }

  /** @internal The running callback's raw arguments; those still in their packet are copied out on first use. */
  rawArguments(): readonly Buffer[] {
    const packet = this.rawPacket;
    if (packet !== undefined) {
      this.rawPacket = undefined;
      const copy = copyOf(packet, this.rawStart, this.rawEnd);
      const nameEnd = this.rawHeaderNameEnd;
      // The packet was checked when it arrived: cutting it cannot fail.
      this.rawArgs = nameEnd > 0 ? [copy.subarray(0, nameEnd), copy.subarray(nameEnd + 1, copy.length - 1)] : splitCStrings(copy, 'argv');
    }
    return this.rawArgs;
  }

  /**
   * Runs the filter's callback `fn` of `row`'s stage, answered with a verdict. The caller reads the
   * callback and the row by their names, so each read is of one known property, not a lookup by a
   * stage name that changes from call to call.
   */
  private run(row: StageRow, fn: StageCallback | undefined, ...args: unknown[]): void | Promise<void> {
    if (!this.running) return;
    const stage = row.callback;
    this.stage = stage;
    if (this.filterUnavailable) return this.answer(row, undefined, true);
    if (fn === undefined) return this.answer(row, undefined, false);
    let result: CallbackResult;
    try {
      result = (fn as (...a: unknown[]) => CallbackResult).apply(this.milter, args);
    } catch (err) {
      this.callbackFailed(stage, err);
      return this.answer(row, undefined, true);
    }
    if (isPromise<Verdict | void>(result)) {
      // The callback goes on after this read: its raw arguments must not be views of the read buffer.
      if (this.rawPacket !== undefined) this.rawArguments();
      return this.guard(stage, result).then(
        (verdict) => this.answer(row, verdict, false),
        () => this.answer(row, undefined, true),
      );
    }
    this.answer(row, result as Verdict | undefined, false);
  }

  /** Runs abort or close: no verdict, failures only logged. */
  private runQuiet(stage: 'abort' | 'close'): void | Promise<void> {
    this.stage = stage;
    const fn = this.milter[stage];
    if (fn === undefined) return;
    let result: void | Promise<void>;
    try {
      result = fn.call(this.milter);
    } catch (err) {
      this.callbackFailed(stage, err);
      return;
    }
    if (isPromise<void>(result)) return this.guard(stage, result).then(undefined, () => undefined);
  }

  /** Applies the callback timeout; a failure is logged and rethrown. */
  private guard<T>(stage: string, promise: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.timers!.delete(timer);
        const err = new Error(`${stage}() did not finish within ${this.callbackTimeout} ms`);
        this.callbackFailed(stage, err);
        reject(err);
      }, this.callbackTimeout);
      (this.timers ??= new Set()).add(timer);
      promise.then(
        (value) => {
          this.clearTimer(timer);
          resolve(value);
        },
        (err: unknown) => {
          this.clearTimer(timer);
          this.callbackFailed(stage, err);
          reject(err);
        },
      );
    });
  }

  private clearTimer(timer: NodeJS.Timeout): void {
    clearTimeout(timer);
    this.timers?.delete(timer);
  }

  private callbackFailed(stage: string, err: unknown): void {
    const message = err instanceof Error ? err.message : String(err);
    this.logger.error({ err, stage }, `${stage}() failed: ${message}; answering ${this.errorVerdict}`);
  }

  /** Sends the reply to a command, honouring NR negotiation, SKIP rules and the custom reply. */
  private answer(row: StageRow, returned: Verdict | void | undefined, failed: boolean): void {
    const stage = row.callback as RepliedStage;
    this.rawArgs = EMPTY;
    this.rawPacket = undefined;
    if (!failed && !this.isVerdict(stage, returned)) failed = true;
    if (this.protocol & row.noReply) {
      if (failed) this.pendingFailure = true;
      else if (returned !== undefined && returned !== 'continue' && returned !== 'noreply') {
        this.logger.warn({ stage, verdict: returned }, `${stage}() returned ${returned}, but the MTA was told not to wait for a reply at this stage; ignored`);
      }
      return;
    }
    let verdict: Verdict = failed ? this.errorVerdict : (returned ?? 'continue');
    if (verdict === 'noreply') verdict = 'continue';
    if (verdict === 'skip' && !(stage === 'body' && this.protocol & Protocol.SKIP)) {
      this.logger.warn({ stage }, `${stage}() returned skip, which is only allowed from body() when SKIP was negotiated; continuing`);
      verdict = 'continue';
    }
    if (this.pendingFailure && messageStages.has(stage) && (verdict === 'continue' || verdict === 'accept')) {
      verdict = this.errorVerdict;
      this.pendingFailure = false;
    }
    if (this.shadow && (verdict === 'reject' || verdict === 'tempfail' || verdict === 'discard')) {
      this.logger.info({ stage, verdict, reply: this.replyText, queueId: this.macros.get('i') }, `shadow: would ${verdict} at ${stage}; continuing`);
      this.replyText = undefined;
      verdict = 'continue';
    }
    this.sendVerdict(verdict);
    if (stage === 'eom' || (verdict !== 'continue' && verdict !== 'skip' && messageStages.has(stage) && !(stage === 'envrcpt' && (verdict === 'reject' || verdict === 'tempfail')))) {
      this.endMessage();
    }
  }

  /**
   * Checks what a callback returned at run time (JavaScript filters are not type-checked): anything
   * but a verdict is a failure of the filter, logged, rather than a reply the MTA cannot read.
   */
  private isVerdict(stage: RepliedStage, returned: unknown): returned is Verdict | undefined {
    if (returned === undefined || verdicts.has(returned as Verdict)) return true;
    const shown = typeof returned === 'string' ? `'${returned}'` : typeof returned;
    const hint = returned === 'shutdown' ? '; to end the SMTP session, call setReply(\'421\', ...) and return \'tempfail\' (Sendmail refuses a SHUTDOWN reply from a filter)' : '';
    this.callbackFailed(stage, new TypeError(`returned ${shown}, which is not a verdict (${[...verdicts].join(', ')})${hint}`));
    return false;
  }

  private sendVerdict(verdict: Exclude<Verdict, 'noreply'>): void {
    const text = this.replyText;
    this.replyText = undefined;
    if (text !== undefined && (verdict === 'reject' || verdict === 'tempfail')) {
      if (replyCodeClass(text) === verdict) {
        this.send(encodeReply({ type: 'replyCode', text }));
        return;
      }
      this.logger.warn({ verdict, reply: text.slice(0, 3) }, `custom reply ${text.slice(0, 3)} does not match verdict ${verdict}; the MTA's default text is used`);
    }
    // The common reply by its own name: a lookup by a verdict that varies is a megamorphic keyed load.
    this.send(verdict === 'continue' ? simpleReplyFrames.continue : simpleReplyFrames[verdict]);
  }

  /**
   * A body packet, or a piece of one: a packet split across reads is handed to body() as views
   * of each read, never copied. The MTA gets one reply per packet: the first verdict other than
   * continue from its pieces (later pieces are not passed on once one is given).
   */
  private onBody(payload: Buffer, more: boolean): void | Promise<void> {
    this.beginMessage(false);
    this.stage = 'body';
    const fn = this.milter.body;
    const settled = this.pieceFailed || (this.pieceVerdict !== undefined && this.pieceVerdict !== 'continue' && this.pieceVerdict !== 'noreply');
    if (fn !== undefined && !settled) {
      let result: CallbackResult;
      try {
        result = fn.call(this.milter, payload);
      } catch (err) {
        this.callbackFailed('body', err);
        this.pieceFailed = true;
        result = undefined;
      }
      if (isPromise<Verdict | void>(result)) {
        return this.guard('body', result).then(
          (verdict) => this.bodyPieceDone(verdict, more),
          () => {
            this.pieceFailed = true;
            this.bodyPieceDone(undefined, more);
          },
        );
      }
      this.bodyPieceDone(result as Verdict | undefined, more);
      return;
    }
    if (!more) this.bodyPieceDone(undefined, false);
  }

  private bodyPieceDone(verdict: Verdict | void | undefined, more: boolean): void {
    if (verdict !== undefined && verdict !== 'continue' && verdict !== 'noreply') this.pieceVerdict = verdict;
    if (more) return;
    const combined = this.pieceVerdict;
    const failed = this.pieceFailed;
    this.pieceVerdict = undefined;
    this.pieceFailed = false;
    this.answer(stages.body, combined, failed);
  }

  // ---- end of message ----

  private onEndOfMessage(payload: Buffer | undefined): void | Promise<void> {
    this.beginMessage(false);
    const body = this.milter.body;
    // libmilter takes data in EOB as a last body chunk; no MTA sends it. It gets no reply of its own.
    if (payload === undefined || body === undefined) return this.endOfMessage();
    this.stage = 'body';
    let result: CallbackResult;
    try {
      result = body.call(this.milter, payload);
    } catch (err) {
      this.callbackFailed('body', err);
      this.pendingFailure = true;
      return this.endOfMessage();
    }
    if (!isPromise(result)) return this.endOfMessage();
    return this.guard('body', result).then(
      () => this.endOfMessage(),
      () => {
        this.pendingFailure = true;
        return this.endOfMessage();
      },
    );
  }

  private endOfMessage(): void | Promise<void> {
    if (!this.running) return;
    this.stage = 'eom';
    const eom = new EndOfMessage();
    this.eomState = eom;
    if (this.filterUnavailable) return this.finishEom(undefined, true);
    const fn = this.milter.eom;
    let result: CallbackResult;
    try {
      result = fn === undefined ? undefined : fn.call(this.milter);
    } catch (err) {
      this.callbackFailed('eom', err);
      return this.finishEom(undefined, true);
    }
    if (!isPromise<Verdict | void>(result)) return this.finishEom(result as Verdict | undefined, false);
    const heartbeat = this.progressInterval > 0 ? setInterval(() => this.progress(), this.progressInterval) : undefined;
    if (heartbeat) (this.timers ??= new Set()).add(heartbeat);
    const stop = (): void => {
      if (heartbeat) this.clearTimer(heartbeat);
    };
    return this.guard('eom', result).then(
      (verdict) => {
        stop();
        return this.finishEom(verdict, false);
      },
      () => {
        stop();
        return this.finishEom(undefined, true);
      },
    );
  }

  private finishEom(returned: Verdict | void | undefined, failed: boolean): void | Promise<void> {
    const eom = this.eomState!;
    eom.close();
    if (!this.running) {
      this.eomState = undefined;
      return;
    }
    // A wrong return value fails the filter before any of its modifications go out.
    if (!failed && !this.isVerdict('eom', returned)) failed = true;
    if (failed || this.pendingFailure) {
      this.eomState = undefined;
      this.pendingFailure = false;
      this.answer(stages.eom, undefined, true);
      return;
    }
    if (this.shadow) {
      if (eom.changes.length > 0) this.logger.info({ changes: eom.changes, queueId: this.macros.get('i') }, `shadow: would modify the message (${eom.changes.join('; ')})`);
      this.eomState = undefined;
      this.answer(stages.eom, returned, false);
      return;
    }
    if (!eom.hasStreamingBody) {
      const packets = eom.encode();
      if (packets !== undefined) this.send(packets);
      this.eomState = undefined;
      this.answer(stages.eom, returned, false);
      return;
    }
    this.flush();
    return eom.stream(
      (packets) => this.io.write(packets),
      // Ended from outside (connection closed, timeout): a streamed body stops at once.
      () => this.running && !this.terminating,
    ).then(
      (complete) => {
        this.eomState = undefined;
        // A cut-off body must never be followed by a verdict: the MTA would deliver it cut off.
        if (complete) this.answer(stages.eom, returned, false);
        else void this.shutdown('connection ended during the body replacement');
      },
      (err: unknown) => {
        this.eomState = undefined;
        this.callbackFailed('replaceBody', err);
        if (this.errorVerdict === 'reject' || this.errorVerdict === 'tempfail') {
          this.answer(stages.eom, undefined, true);
          return;
        }
        // Part of the new body may have gone out: accepting now would deliver it cut off.
        this.logger.warn({ stage: 'eom', verdict: 'tempfail' }, `the replacement body failed part way; answering tempfail, not ${this.errorVerdict}`);
        this.answer(stages.eom, 'tempfail', false);
      },
    );
  }

  // ---- shutdown ----

  private closeFilter(): void | Promise<void> {
    const aborting = this.inMessage ? this.runQuiet('abort') : undefined;
    this.inMessage = false;
    if (aborting) return aborting.then(() => this.runQuiet('close'));
    return this.runQuiet('close');
  }

  private shutdown(reason: string): Promise<void> {
    if (this.phase === 'closing' || this.phase === 'closed') return this.closed;
    const wasOpen = this.phase === 'open';
    this.phase = 'closing';
    this.flush();
    this.logger.debug({ reason }, 'session closing');
    const finish = (): void => {
      if (this.timers) for (const timer of this.timers) clearTimeout(timer);
      this.timers = undefined;
      this.phase = 'closed';
      this.stage = 'closed';
      this.io.close();
      // Nothing reads this session's macros from here on (a callback abandoned at a timeout reads
      // none), so their store can serve a later connection.
      const macros = this.liveMacros;
      this.liveMacros = undefined;
      if (macros !== undefined) MacroStore.release(macros);
      this.resolveClosed();
    };
    const pending = wasOpen ? this.closeFilter() : undefined;
    if (pending) pending.then(finish, finish);
    else finish();
    return this.closed;
  }

  /** A protocol error: log it, run abort/close, and close the connection without a reply. */
  private fail(err: unknown): void {
    if (this.phase === 'closed' || this.phase === 'closing') return;
    const message = err instanceof Error ? err.message : String(err);
    this.logger.error({ err }, `closing the connection: ${message}`);
    this.queue.clear();
    this.clearOutput();
    void this.shutdown(message);
  }
}

/** Creates a session over any byte transport (a socket, an in-memory pipe for tests). */
export function createMilterSession(options: SessionOptions, io: SessionIO): MilterSession {
  return new MilterSession(options, io);
}
