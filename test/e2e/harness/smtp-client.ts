/** A minimal SMTP client for the suite: one command at a time, every reply line recorded. */
import net from 'node:net';

/** One (possibly multi-line) SMTP reply. */
export interface SmtpReply {
  code: number;
  lines: string[];
  /** The reply lines joined with "\n", exactly as received (without CRLF). */
  text: string;
}

/** Raised when the server closes the connection or stays silent while a reply is due. */
export class SmtpConnectionError extends Error {
  override readonly name = 'SmtpConnectionError';
}

const MAX_LINE_BYTES = 64 * 1024;

export class SmtpClient {
  /** Every line sent ("C: ...") and received ("S: ..."), in order. */
  readonly transcript: string[] = [];
  private buffered = '';
  private pendingLines: string[] = [];
  private readonly replies: SmtpReply[] = [];
  private waiter: { resolve: (reply: SmtpReply) => void; reject: (error: Error) => void } | undefined;
  private closedReason: string | undefined;

  private constructor(
    private readonly socket: net.Socket,
    private readonly replyTimeoutMs: number,
  ) {
    socket.on('data', (data) => this.receive(data));
    socket.on('close', () => this.fail('the server closed the connection'));
    socket.on('error', (error) => this.fail(`connection error: ${error.message}`));
  }

  /** Connects and reads the greeting. */
  static async connect(host: string, port: number, replyTimeoutMs: number): Promise<{ client: SmtpClient; greeting: SmtpReply }> {
    const socket = await new Promise<net.Socket>((resolve, reject) => {
      const connection = net.connect({ host, port }, () => {
        connection.off('error', reject);
        resolve(connection);
      });
      connection.once('error', reject);
    });
    const client = new SmtpClient(socket, replyTimeoutMs);
    client.transcript.push(`-- connected to [${host}]:${port}`);
    return { client, greeting: await client.nextReply() };
  }

  /** Sends one command line and reads its reply. */
  async command(line: string): Promise<SmtpReply> {
    this.transcript.push(`C: ${line}`);
    this.socket.write(`${line}\r\n`);
    return this.nextReply();
  }

  /** Sends a message after a 354 reply (dot-stuffed, CRLF line ends, final dot) and reads the reply. */
  async sendMessage(message: Buffer): Promise<SmtpReply> {
    const text = message.toString('latin1').replace(/\r?\n/g, '\r\n');
    const stuffed = text.replace(/^\./gm, '..');
    const terminated = stuffed.endsWith('\r\n') || stuffed === '' ? stuffed : `${stuffed}\r\n`;
    this.transcript.push(`C: <message, ${message.length} bytes>`, 'C: .');
    this.socket.write(Buffer.from(`${terminated}.\r\n`, 'latin1'));
    return this.nextReply();
  }

  /** Sends QUIT if the connection is still open, then closes it. */
  async quit(): Promise<void> {
    if (this.closedReason === undefined) {
      await this.command('QUIT').catch(() => undefined);
    }
    this.close();
  }

  close(): void {
    this.socket.destroy();
  }

  private nextReply(): Promise<SmtpReply> {
    const ready = this.replies.shift();
    if (ready) return Promise.resolve(ready);
    if (this.closedReason !== undefined) return Promise.reject(new SmtpConnectionError(this.closedReason));
    return new Promise<SmtpReply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        reject(new SmtpConnectionError(`no reply within ${this.replyTimeoutMs} ms`));
      }, this.replyTimeoutMs);
      this.waiter = {
        resolve: (reply) => {
          clearTimeout(timer);
          resolve(reply);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
    });
  }

  private receive(data: Buffer): void {
    this.buffered += data.toString('utf8');
    let end: number;
    while ((end = this.buffered.indexOf('\r\n')) >= 0) {
      this.line(this.buffered.slice(0, end));
      this.buffered = this.buffered.slice(end + 2);
    }
    if (this.buffered.length > MAX_LINE_BYTES) {
      this.fail(`reply line longer than ${MAX_LINE_BYTES} bytes`);
      this.socket.destroy();
    }
  }

  private line(line: string): void {
    this.transcript.push(`S: ${line}`);
    this.pendingLines.push(line);
    if (/^\d{3}-/.test(line)) return;
    const lines = this.pendingLines;
    this.pendingLines = [];
    this.deliver({ code: Number(line.slice(0, 3)), lines, text: lines.join('\n') });
  }

  private deliver(reply: SmtpReply): void {
    const waiter = this.waiter;
    this.waiter = undefined;
    if (waiter) waiter.resolve(reply);
    else this.replies.push(reply);
  }

  private fail(reason: string): void {
    if (this.closedReason !== undefined) return;
    this.closedReason = reason;
    this.transcript.push(`-- ${reason}`);
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.reject(new SmtpConnectionError(reason));
  }
}
