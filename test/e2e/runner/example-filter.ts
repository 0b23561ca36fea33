/**
 * The README's main job against a real MTA: `milterkit serve examples/add-header.ts` started as
 * a separate process on the MTA's milter socket, one normal message and one the example rejects.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Mta } from '../harness/mta.js';
import { headerValues } from '../harness/message.js';
import { SmtpClient } from '../harness/smtp-client.js';
import { waitFor } from '../harness/wait.js';

const root = fileURLToPath(new URL('../../../../', import.meta.url));
const cli = fileURLToPath(new URL('../../../src/cli/main.js', import.meta.url));

function message(subject: string): Buffer {
  return Buffer.from(`From: sender@example.org\r\nTo: rcpt@example.com\r\nSubject: ${subject}\r\nMessage-ID: <${subject.replace(/\W/g, '')}@example.org>\r\n\r\nHello.\r\n`);
}

/** Runs the example; returns the problems found (empty when all is as the example promises). */
export async function runExampleFilter(mta: Mta): Promise<{ problems: string[]; header: string | undefined; rejection: string }> {
  await mta.clear();
  rmSync(mta.milterSocket, { force: true });
  const child = spawn(process.execPath, [cli, 'serve', 'examples/add-header.ts', '--socket', `unix:${mta.milterSocket}`, '--socket-mode', '666', '--log-level', 'warn'], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const problems: string[] = [];
  try {
    const [line] = (await once(child.stdout, 'data')) as [Buffer];
    if (!line.toString().includes(`listening on unix:${mta.milterSocket}`)) problems.push(`serve printed ${JSON.stringify(line.toString())}`);
    const { client } = await SmtpClient.connect('127.0.0.1', mta.smtpPort, 20_000);
    const expect = async (command: string, code: number): Promise<string> => {
      const reply = await client.command(command);
      if (reply.code !== code) problems.push(`${command}: expected ${code}, got ${reply.text}`);
      return reply.text;
    };
    const send = async (subject: string): Promise<string> => {
      await expect('MAIL FROM:<sender@example.org>', 250);
      await expect('RCPT TO:<rcpt@example.com>', 250);
      await expect('DATA', 354);
      return (await client.sendMessage(message(subject))).text;
    };
    await expect('EHLO client.e2e.test', 250);
    const accepted = await send('hello from the README');
    if (!accepted.startsWith('250')) problems.push(`normal message: ${accepted}`);
    const rejection = await send('please REJECTME');
    await client.quit();
    await waitFor('1 delivery', () => mta.mailbox.count() >= 1, 20_000);
    await mta.settle(20_000);
    const deliveries = mta.mailbox.deliveries();
    const header = deliveries[0] === undefined ? undefined : headerValues(deliveries[0], 'X-Milterkit')[0];
    if (deliveries.length !== 1) problems.push(`expected 1 delivery, got ${deliveries.length}`);
    return { problems, header, rejection };
  } finally {
    child.kill('SIGTERM');
    const [code] = await once(child, 'exit');
    if (code !== 0) problems.push(`milterkit serve exited with ${code}`);
  }
}
