/** An MTA connection over a real socket, for server tests. */
import net from 'node:net';
import { FrameReader, decodeReply, encodeCommand, type Bytes, type MilterReply, type MtaCommand } from '../../src/protocol/index.js';

/** An MTA connection over a real socket. */
export class Wire {
  private readonly reader = new FrameReader();
  private replies: MilterReply[] = [];
  private waiters: Array<() => void> = [];
  closed: Promise<void>;

  constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk) => {
      this.reader.push(chunk, (code, payload) => this.replies.push(decodeReply(code, payload)));
      for (const wake of this.waiters.splice(0)) wake();
    });
    this.closed = new Promise((resolve) => socket.on('close', () => resolve()));
    socket.on('error', () => {});
  }

  static async open(target: { path: string } | { port: number; host: string }): Promise<Wire> {
    const socket = net.connect(target as net.NetConnectOpts);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new Wire(socket);
  }

  /** Sends commands and waits for `expect` replies. */
  async exchange(expect: number, ...commands: Array<MtaCommand<Bytes>>): Promise<MilterReply[]> {
    for (const c of commands) this.socket.write(encodeCommand(c));
    while (this.replies.length < expect) await new Promise<void>((resolve) => this.waiters.push(resolve));
    return this.replies.splice(0, expect);
  }
}

