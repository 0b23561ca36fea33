/**
 * A small in-memory MTA for the milter-side tests: it encodes commands with the codec, feeds the
 * bytes to a session, and decodes every byte the milter writes back.
 */
import {
  FrameReader,
  decodeReply,
  encodeCommand,
  type Bytes,
  type MilterReply,
  type MtaCommand,
} from '../../src/protocol/index.js';
import { MilterSession, type SessionOptions } from '../../src/milter/session.js';
import type { Logger } from '../../src/log.js';
import { Milter } from '../../src/milter/milter.js';

/** A filter class that takes MAIL and records its abort and close callbacks into `events`. */
export function lifecycleRecorder(events: string[]): typeof Milter {
  return class LifecycleRecorder extends Milter {
    override envfrom() {}
    override abort() {
      events.push('abort');
    }
    override close() {
      events.push('close');
    }
  };
}

export const POSTFIX_V6 = { type: 'optneg', version: 6, actions: 0x1ff, protocol: 0x1fffff } as const;

/** A logger that keeps every entry, to assert on log lines. */
export class MemoryLogger implements Logger {
  readonly entries: Array<{ level: string; message: string; fields: object }> = [];
  error(fields: object, message: string): void {
    this.entries.push({ level: 'error', message, fields });
  }
  warn(fields: object, message: string): void {
    this.entries.push({ level: 'warn', message, fields });
  }
  info(fields: object, message: string): void {
    this.entries.push({ level: 'info', message, fields });
  }
  debug(): void {}
  has(level: string, pattern: RegExp): boolean {
    return this.entries.some((e) => e.level === level && pattern.test(e.message));
  }
}

export class Driver {
  readonly session: MilterSession;
  readonly logger = new MemoryLogger();
  /** Raw bytes written by the milter, in order. */
  readonly written: Buffer[] = [];
  closedByMilter = false;
  private readonly reader = new FrameReader();
  private replies: MilterReply[] = [];

  constructor(options: Omit<SessionOptions, 'logger'>) {
    this.session = new MilterSession({ ...options, logger: this.logger }, {
      write: (data) => {
        this.written.push(Buffer.from(data));
        this.reader.push(data, (code, payload) => this.replies.push(decodeReply(code, payload)));
      },
      close: () => {
        this.closedByMilter = true;
      },
    });
  }

  /** Sends commands (or raw bytes) and returns every reply they produced once the session is idle. */
  async send(...commands: Array<MtaCommand<Bytes> | Buffer>): Promise<MilterReply[]> {
    for (const c of commands) this.session.receive(Buffer.isBuffer(c) ? c : encodeCommand(c));
    return this.settle();
  }

  /** Waits until the session has answered everything, then returns the new replies. */
  async settle(): Promise<MilterReply[]> {
    for (let i = 0; i < 10_000 && !this.session.idle; i++) await new Promise((r) => setTimeout(r, 1));
    await new Promise((r) => setImmediate(r));
    const out = this.replies;
    this.replies = [];
    return out;
  }

  /** Negotiates as Postfix 3.x with protocol 6 and returns the OPTNEG reply. */
  async negotiate(offer: MtaCommand<Bytes> = POSTFIX_V6): Promise<MilterReply> {
    const [reply, ...rest] = await this.send(offer);
    if (rest.length > 0 || reply === undefined) throw new Error(`expected one OPTNEG reply, got ${rest.length + (reply ? 1 : 0)}`);
    return reply;
  }
}

/** Reply types, for compact assertions. */
export function types(replies: MilterReply[]): string[] {
  return replies.map((r) => r.type);
}

/** A reply with its byte-string fields shown as text, for readable deep-equal assertions. */
export function textOf(reply: MilterReply): Record<string, unknown> {
  return Object.fromEntries(Object.entries(reply).map(([k, v]) => [k, Buffer.isBuffer(v) ? v.toString('latin1') : v]));
}

export const connect = (address = '192.0.2.1'): MtaCommand<Bytes> => ({ type: 'connect', hostname: 'client.example', family: 'inet', port: 4321, address });
export const mail = (sender = '<a@example.org>', ...args: string[]): MtaCommand<Bytes> => ({ type: 'mail', args: [sender, ...args] });
export const rcpt = (recipient = '<b@example.net>', ...args: string[]): MtaCommand<Bytes> => ({ type: 'rcpt', args: [recipient, ...args] });
export const header = (name: Bytes, value: Bytes): MtaCommand<Bytes> => ({ type: 'header', name, value });
export const macro = (stage: string, pairs: Record<string, string>): MtaCommand<Bytes> => ({ type: 'macro', stage: stage.charCodeAt(0), macros: Object.entries(pairs) });
