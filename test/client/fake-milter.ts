/**
 * A scripted milter for client tests: it decodes every command the client writes and answers
 * with whatever the test's script returns, through the same byte path a socket would use.
 */
import { FrameReader, decodeCommand, encodeReply, text, type Bytes, type MilterReply, type MtaCommand } from '../../src/protocol/index.js';
import { MilterConnection, type MilterClientOptions } from '../../src/client/connection.js';

/** What the script answers to one command: replies to encode, raw bytes, or nothing. */
export type Answer = Array<MilterReply<Bytes> | Buffer> | undefined;

/** A readable form of a decoded command, for assertions. */
export function show(command: MtaCommand): string {
  switch (command.type) {
    case 'macro':
      return `D${String.fromCharCode(command.stage)}{${command.macros.map(([n, v]) => `${text(n)}=${text(v)}`).join(',')}}`;
    case 'connect':
      return `connect ${text(command.hostname)} ${command.family}${command.address === undefined ? '' : ` ${text(command.address)}:${command.port}`}`;
    case 'helo':
      return `helo ${text(command.name)}`;
    case 'mail':
    case 'rcpt':
      return `${command.type} ${command.args.map(text).join(' ')}`;
    case 'header':
      return `header ${text(command.name)}=${JSON.stringify(text(command.value))}`;
    case 'body':
      return `body ${command.chunk.length}`;
    case 'unknown':
      return `unknown ${text(command.line)}`;
    case 'optneg':
      return `optneg ${command.version} 0x${command.actions.toString(16)} 0x${command.protocol.toString(16)}`;
    default:
      return command.type;
  }
}

/** The negotiation answer of a milter that wants everything and declines nothing. */
export const FULL_OPTNEG: MilterReply<Bytes> = { type: 'optneg', version: 6, actions: 0x1ff, protocol: 0 };

export class FakeMilter {
  /** Every command received, decoded. */
  readonly received: MtaCommand[] = [];
  closed = false;
  readonly connection: MilterConnection;
  private readonly reader = new FrameReader(16 * 1024 * 1024);

  constructor(
    private readonly script: (command: MtaCommand, milter: FakeMilter) => Answer,
    options: MilterClientOptions = {},
  ) {
    this.connection = new MilterConnection(
      {
        write: (data) => {
          this.reader.push(Buffer.from(data), (code, payload) => {
            const command = decodeCommand(code, Buffer.from(payload));
            this.received.push(command);
            const answer = this.script(command, this);
            if (answer !== undefined) this.reply(...answer);
          });
        },
        close: () => {
          this.closed = true;
        },
      },
      options,
    );
  }

  /** Sends replies (or raw bytes) to the client, asynchronously as a socket would. */
  reply(...replies: Array<MilterReply<Bytes> | Buffer>): void {
    const bytes = Buffer.concat(replies.map((r) => (Buffer.isBuffer(r) ? r : encodeReply(r))));
    queueMicrotask(() => this.connection.receive(bytes));
  }

  /** The received commands in readable form. */
  get log(): string[] {
    return this.received.map(show);
  }
}

/** A script answering CONTINUE to everything that expects a reply, and the given OPTNEG. */
export function continueAll(optneg: MilterReply<Bytes> = FULL_OPTNEG): (command: MtaCommand) => Answer {
  return (command) => {
    switch (command.type) {
      case 'optneg':
        return [optneg];
      case 'macro':
      case 'abort':
      case 'quit':
      case 'quitNc':
        return undefined;
      default:
        return [{ type: 'continue' }];
    }
  };
}
