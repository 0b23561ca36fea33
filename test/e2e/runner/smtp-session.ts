/** Plays the SMTP side of a case and compares every reply with what the case expects. */
import { SmtpClient, SmtpConnectionError, type SmtpReply } from '../harness/smtp-client.js';
import { renderBytes, withLineEnds, type MessageSpec, type SmtpSpec } from './case-file.js';
import { matchesReply } from './patterns.js';

/** What happened on the SMTP connection. */
export interface SessionOutcome {
  transcript: string[];
  /** One line per reply that did not match. */
  mismatches: string[];
  /** The reply to the last command of each message (what the client learned about its fate). */
  finalReplies: string[];
  /** The reply to each RCPT of each message. */
  recipientReplies: Array<Array<{ address: string; reply: string }>>;
}

/** Reply used when the server closed the connection instead of answering. */
const CLOSED = '(connection closed)';
const REPLY_TIMEOUT_MS = 60_000;

/**
 * Plays the case's SMTP side.
 * @param contents each message as sent after DATA (see {@link buildMessage})
 */
export async function playSession(spec: SmtpSpec, port: number, contents: readonly Buffer[]): Promise<SessionOutcome> {
  const host = spec.client ?? '127.0.0.1';
  const mismatches: string[] = [];
  const finalReplies: string[] = [];
  const recipientReplies: SessionOutcome['recipientReplies'] = [];
  const { client, greeting } = await SmtpClient.connect(host, port, REPLY_TIMEOUT_MS);
  const check = (what: string, expected: string, reply: string): boolean => {
    const ok = matchesReply(expected, reply);
    if (!ok) mismatches.push(`${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(reply)}`);
    return ok;
  };
  const send = async (line: string): Promise<string> => {
    try {
      return (await client.command(line)).text;
    } catch (error) {
      if (error instanceof SmtpConnectionError) return CLOSED;
      throw error;
    }
  };
  try {
    check('greeting', spec.greeting ?? '220', greeting.text);
    check('EHLO', spec.ehloReply ?? '250', await send('EHLO client.e2e.test'));
    for (const [index, message] of spec.messages.entries()) {
      const replies: Array<{ address: string; reply: string }> = [];
      recipientReplies.push(replies);
      finalReplies.push(await playMessage(message, contents[index]!, send, client, check, replies));
      if (message.rset) check('RSET', '250', await send('RSET'));
    }
  } finally {
    await client.quit();
  }
  return { transcript: client.transcript, mismatches, finalReplies, recipientReplies };
}

type Check = (what: string, expected: string, reply: string) => boolean;

async function playMessage(
  message: MessageSpec,
  content: Buffer,
  send: (line: string) => Promise<string>,
  client: SmtpClient,
  check: Check,
  recipientReplies: Array<{ address: string; reply: string }>,
): Promise<string> {
  if (message.auth !== undefined) {
    const { user, password } = message.auth;
    // RFC 4616: authorization identity (empty: the same), authentication identity, password.
    const response = Buffer.from(`\0${user}\0${password}`, 'utf8').toString('base64');
    check(`AUTH PLAIN (${user})`, message.authReply ?? '235', await send(`AUTH PLAIN ${response}`));
  }
  const mailCommand = ['MAIL FROM:' + message.from, ...(message.fromArgs ?? [])].join(' ');
  const mailReply = await send(mailCommand);
  check(mailCommand, message.mailReply ?? '250', mailReply);
  if (!mailReply.startsWith('2')) return mailReply;
  let accepted = 0;
  let last = mailReply;
  for (const rcpt of message.to) {
    const command = ['RCPT TO:' + rcpt.address, ...(rcpt.args ?? [])].join(' ');
    last = await send(command);
    recipientReplies.push({ address: rcpt.address, reply: last });
    check(command, rcpt.reply ?? '250', last);
    if (last.startsWith('2')) accepted += 1;
  }
  if (message.data === false || (accepted === 0 && message.dataReply === undefined)) return last;
  const dataReply = await send('DATA');
  check('DATA', message.dataReply ?? '354', dataReply);
  if (!dataReply.startsWith('354')) return dataReply;
  let reply: SmtpReply | undefined;
  try {
    reply = await client.sendMessage(content);
  } catch (error) {
    if (!(error instanceof SmtpConnectionError)) throw error;
  }
  const text = reply?.text ?? CLOSED;
  check('end of data', message.reply ?? '250', text);
  return text;
}

/** The message as sent: the case's header fields (plus Date and Message-ID when missing) and body. */
export function buildMessage(message: MessageSpec, messageId: string, date: Date): Buffer {
  const headers = [...(message.headers ?? [])];
  const has = (name: string) => headers.some(([field]) => field.toLowerCase() === name);
  if (!has('date')) headers.push(['Date', date.toUTCString()]);
  if (!has('message-id')) headers.push(['Message-ID', `<${messageId}@client.e2e.test>`]);
  const head = withLineEnds(Buffer.from(headers.map(([name, value]) => `${name}: ${value}\n`).join('') + '\n', 'utf8'), '\r\n');
  return Buffer.concat([head, withLineEnds(renderBytes(message.body ?? ''), '\r\n')]);
}
