/**
 * The offline `courier` profile: a chain run on a message as Courier would run it — the data and
 * control files Courier's `submit` writes (its own `Received:` field first, LF line ends, the header
 * fields it adds or rewrites (./courier-submit.ts), the envelope, client and AUTH records), the
 * chain at end of DATA, and Courier's reply semantics —
 * then a report of what the client would be told and what would be delivered.
 *
 * @packageDocumentation
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as control from '../courier/helpers/control.js';
import type { CourierLogger } from '../courier/logging.js';
import type { Chain } from '../filter-api/chain.js';
import { bareAddress, type CourierConfigView } from '../filter-api/transaction.js';
import { parseMessage } from '../mta/message.js';
import { rfc5322Date } from '../mta/profile.js';
import { DeliveryReport, type MessageVerdict } from '../mta/report.js';
import { recipientArgs, runChainOnCourierMessage } from './courier.js';
import { applySubmitRewrites } from './courier-submit.js';

/** The envelope and client of an offline Courier run. */
export interface CourierRunInput {
  /** MAIL FROM, with or without angle brackets. */
  from: string;
  recipients: readonly string[];
  client?: { address?: string; hostname?: string; helo?: string };
  /** SMTP AUTH user (Courier's `i` record). */
  authUser?: string;
  /** Courier's host name (`me`), default `mail.example.test`. */
  me?: string;
  /** Courier's configuration for filters that read it. */
  courier?: CourierConfigView;
  logger?: CourierLogger;
  date?: Date;
}

const silent: CourierLogger = { info: () => {}, warn: () => {}, error: () => {}, debug: () => {}, child: () => silent } as unknown as CourierLogger;

let runs = 0;

/** A queue id in Courier's form (inode, time, pid in hex). */
function queueId(date: Date): string {
  const hex = (n: number, width: number) => n.toString(16).toUpperCase().padStart(width, '0');
  return `${hex(++runs, 16)}.${hex(Math.floor(date.getTime() / 1000), 16)}.${hex(process.pid, 8)}`;
}

function verdictOf(reply: string): MessageVerdict {
  return reply.startsWith('4') ? 'tempfail' : reply.startsWith('5') ? 'reject' : 'accept';
}

/**
 * Runs `chain` on `message` as Courier would and reports the outcome in the test kit's form:
 * `verdict`, `smtpReply` (Courier's `250 Ok. <id>` on acceptance), the recipients still to be
 * delivered (removed ones under `rejected`), the envelope and the message as written back.
 */
export async function runOnCourier(chain: Chain, message: Buffer | string, input: CourierRunInput): Promise<DeliveryReport> {
  const date = input.date ?? new Date();
  const id = queueId(date);
  const address = input.client?.address ?? '127.0.0.1';
  const mapped = address.includes(':') ? address : `::ffff:${address}`;
  const helo = input.client?.helo ?? input.client?.hostname ?? 'localhost';
  const me = input.me ?? 'mail.example.test';
  const dir = await mkdtemp(join(tmpdir(), 'milterkit-courier-offline-'));
  try {
    const dataPath = join(dir, 'D');
    const controlPath = join(dir, 'C');
    const host = input.client?.hostname ? `${input.client.hostname} ` : '';
    const received = `Received: from ${helo} (${host}[${mapped}])\n  by ${me} with ESMTP; ${rfc5322Date(date)}\n  id ${id}\n`;
    const body = applySubmitRewrites((typeof message === 'string' ? Buffer.from(message) : message).toString('latin1').replace(/\r\n?/g, '\n'));
    await writeFile(dataPath, Buffer.from(received + body, 'latin1'));
    const recipients = input.recipients.map(bareAddress);
    const records = [
      `s${bareAddress(input.from)}`,
      `fdns; ${helo} ([${mapped}])`,
      'e',
      't',
      `M${id}`,
      ...(input.authUser ? [`i${input.authUser}`] : []),
      ...recipients.flatMap((rcpt) => [`r${rcpt}`, 'R', 'N']),
      `OTCPREMOTEIP=${mapped}`,
      ...(input.client?.hostname ? [`OTCPREMOTEHOST=${input.client.hostname}`] : []),
      `u${input.authUser ? 'authsmtp' : 'smtp'}`,
    ];
    await writeFile(controlPath, records.join('\n') + '\n');
    const reply = await runChainOnCourierMessage(chain, { dataPath, controlPaths: [controlPath] }, { logger: input.logger ?? silent, ...(input.courier ? { courier: input.courier } : {}) });
    const verdict = verdictOf(reply);
    const files = await control.readControlFiles([controlPath]);
    const remaining = files.flatMap((file) => file.recipients).filter((r) => !r.delivered);
    const removed = files.flatMap((file) => file.recipients).filter((r) => r.delivered);
    // The reason sits in the `I<n> R 250 Ok - <reason>` record written at the removal.
    const removalReason = (index: number) => files[0]!.records.find((record) => record.type === 'I' && record.value.startsWith(`${index} `))?.value.replace(/^\d+ R 250 Ok - /, '') ?? '';
    const delivered = verdict === 'accept' && remaining.length > 0;
    const data = control.controlDataOf(files);
    return new DeliveryReport({
      profile: 'courier',
      stages: [],
      verdict: verdict === 'accept' && remaining.length === 0 ? 'discard' : verdict,
      smtpReply: verdict === 'accept' ? `250 Ok. ${id}` : reply,
      held: false,
      recipients: { accepted: remaining.map((r) => `<${r.address}>`), rejected: removed.map((r) => ({ recipient: `<${r.address}>`, reply: removalReason(r.index) })) },
      modifications: [],
      ...(delivered
        ? {
            envelope: {
              sender: `<${data.sender}>`,
              recipients: remaining.map((r) => {
                const args = recipientArgs(r);
                return { address: `<${r.address}>`, ...(args.length > 0 ? { args: args.join(' ') } : {}) };
              }),
            },
            message: parseMessage(await readFile(dataPath)),
          }
        : {}),
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
