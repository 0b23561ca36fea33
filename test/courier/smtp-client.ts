/**
 * A minimal SMTP client for the end-to-end tests: one command at a time, multi-line replies
 * kept line by line, every wait bounded.
 */
import { createConnection, type Socket } from 'node:net';

export interface SmtpReply {
  code: number;
  /** Full reply lines as received, e.g. `550-First`, `550 Second`. */
  lines: string[];
}

export class SmtpClient {
  private buffer = '';
  private pending: string[] = [];
  private waiter: (() => void) | undefined;
  private closed = false;

  private constructor(private readonly socket: Socket) {
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      this.buffer += chunk;
      const parts = this.buffer.split('\r\n');
      this.buffer = parts.pop()!;
      this.pending.push(...parts);
      this.waiter?.();
    });
    socket.on('close', () => {
      this.closed = true;
      this.waiter?.();
    });
    socket.on('error', () => undefined);
  }

  static async connect(port: number, host = '127.0.0.1', timeoutMs = 30_000): Promise<{ client: SmtpClient; greeting: SmtpReply }> {
    const socket = createConnection(port, host);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const client = new SmtpClient(socket);
    return { client, greeting: await client.reply(timeoutMs) };
  }

  /** Reads one complete (possibly multi-line) reply. */
  async reply(timeoutMs = 30_000): Promise<SmtpReply> {
    const lines: string[] = [];
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      while (this.pending.length > 0) {
        const line = this.pending.shift()!;
        lines.push(line);
        if (/^\d{3}( |$)/.test(line)) return { code: Number(line.slice(0, 3)), lines };
      }
      if (this.closed) throw new Error(`connection closed; partial reply ${JSON.stringify(lines)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no SMTP reply within ${timeoutMs} ms; partial ${JSON.stringify(lines)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.waiter = undefined;
    }
  }

  async command(line: string, timeoutMs?: number): Promise<SmtpReply> {
    this.socket.write(line + '\r\n');
    return this.reply(timeoutMs);
  }

  /** Sends a message body after a 354 (dot-stuffed, CRLF line ends) and returns the final reply. */
  async data(message: string, timeoutMs?: number): Promise<SmtpReply> {
    const go = await this.command('DATA');
    if (go.code !== 354) return go;
    const text = message.replace(/\r?\n/g, '\r\n').replace(/^\./gm, '..');
    this.socket.write(text + (text.endsWith('\r\n') ? '' : '\r\n') + '.\r\n');
    return this.reply(timeoutMs);
  }

  async quit(): Promise<void> {
    if (!this.closed) await this.command('QUIT').catch(() => undefined);
    this.socket.destroy();
  }
}

/** Sends one message; returns every reply, the last one being DATA's final reply (or the failure). */
export async function sendMail(
  port: number,
  envelope: { from: string; to: string[]; auth?: { user: string; password: string } },
  message: string,
): Promise<{ data: SmtpReply; rcpt: SmtpReply[] }> {
  const { client } = await SmtpClient.connect(port);
  try {
    await client.command('EHLO client.example');
    if (envelope.auth) {
      const token = Buffer.from(`\0${envelope.auth.user}\0${envelope.auth.password}`).toString('base64');
      const auth = await client.command(`AUTH PLAIN ${token}`);
      if (auth.code !== 235) throw new Error(`AUTH failed: ${auth.lines.join(' ')}`);
    }
    const mail = await client.command(`MAIL FROM:<${envelope.from}>`);
    if (mail.code !== 250) throw new Error(`MAIL FROM refused: ${mail.lines.join(' ')}`);
    const rcpt: SmtpReply[] = [];
    for (const to of envelope.to) rcpt.push(await client.command(`RCPT TO:<${to}>`));
    return { data: await client.data(message), rcpt };
  } finally {
    await client.quit();
  }
}
