/** Runs one case on one MTA: milter up, SMTP session, then deliveries and held messages checked. */
import { AssertionError } from 'node:assert';
import { rmSync } from 'node:fs';
import { MilterServer, type Logger } from '../../../src/index.js';
import type { Mta } from '../harness/mta.js';
import { waitFor, withinLimit } from '../harness/wait.js';
import type { Case } from './case-file.js';
import { caseFilter, type CaseFilter } from './case-chain.js';
import { checkDeliveries, checkHeld } from './expectations.js';
import { comparePrediction, predict } from './offline.js';
import { buildMessage, playSession } from './smtp-session.js';

/** Limits of the waits after the SMTP session (deliveries are local and quick; this is a ceiling). */
const DELIVERY_LIMIT_MS = 30_000;
const MILTER_CLOSE_LIMIT_MS = 20_000;
const MAX_MILTER_LOG_LINES = 2000;

/** A pino-like logger keeping the milter's log lines for failure reports. */
function collectingLogger(lines: string[]): Logger {
  const write = (level: string) => (fields: object, message: string) => {
    lines.push(`${level} ${message} ${JSON.stringify(fields)}`);
    if (lines.length > MAX_MILTER_LOG_LINES) lines.shift();
  };
  return { error: write('error'), warn: write('warn'), info: write('info'), debug: write('debug') };
}

/**
 * Runs `kase` against `mta`, then the same milter offline with the MTA's profile: the prediction
 * must match what the MTA answered, delivered and held.
 * @returns a one-line summary of what the client and the mailbox saw
 * @throws AssertionError listing every mismatch, with the SMTP transcript and both logs
 */
export async function runCase(mta: Mta, kase: Case): Promise<string> {
  await mta.clear();
  const logStart = mta.log().length;
  const milterLog: string[] = [];
  let server: MilterServer | undefined;
  let filter: CaseFilter | undefined;
  if (kase.milter.down) {
    rmSync(mta.milterSocket, { force: true });
  } else {
    filter = await caseFilter(kase.milter, kase.file, collectingLogger(milterLog));
    server = new MilterServer({
      filter: filter.filter,
      socket: `unix:${mta.milterSocket}`,
      // Postfix's smtpd runs as "postfix" and must be able to connect.
      socketMode: 0o666,
      logger: collectingLogger(milterLog),
      ...kase.milter.server,
    });
    await server.listen();
  }
  const problems: string[] = [];
  let transcript: string[] = [];
  let summary = '';
  try {
    const sentAt = new Date();
    const sent = kase.smtp.messages.map((message, index) => buildMessage(message, `${kase.name}.${mta.name}.${index + 1}`, sentAt));
    const session = await playSession(kase.smtp, mta.smtpPort, sent);
    transcript = session.transcript;
    problems.push(...session.mismatches);
    const expectedDeliveries = kase.expect.delivered ?? [];
    if (expectedDeliveries.length > 0) {
      await waitFor(`${expectedDeliveries.length} deliveries`, () => mta.mailbox.count() >= expectedDeliveries.length, DELIVERY_LIMIT_MS).catch((error: Error) => {
        problems.push(error.message);
      });
    }
    await mta.settle(DELIVERY_LIMIT_MS).catch((error: Error) => problems.push(error.message));
    const delivered = mta.mailbox.deliveries();
    const held = await mta.held();
    problems.push(...checkDeliveries(expectedDeliveries, delivered), ...checkHeld(kase.expect.held ?? [], held));
    const caseLog = mta.log().slice(logStart);
    for (const text of kase.expect.log ?? []) {
      if (!caseLog.some((line) => line.includes(text))) problems.push(`the ${mta.name} log has no line with ${JSON.stringify(text)}`);
    }
    problems.push(...comparePrediction(kase, mta.name, { session, delivered, held }, await predict(kase, mta, sent)));
    summary = `replies: ${session.finalReplies.map((reply) => reply.replace(/\n/g, ' | ')).join(' ; ')} — delivered: ${
      delivered.map((delivery) => delivery.recipient).join(', ') || 'none'
    } — held: ${held.length} — offline prediction matches`;
  } finally {
    if (server) {
      await withinLimit('the milter server to close', server.close(), MILTER_CLOSE_LIMIT_MS).catch((error: Error) => {
        problems.push(error.message);
      });
    }
    await filter?.close();
  }
  if (problems.length > 0) {
    throw new AssertionError({
      message: [
        `${kase.name} on ${mta.name}: ${kase.description}`,
        ...problems.map((problem) => `  - ${problem}`),
        'SMTP transcript:',
        ...transcript.map((line) => `  ${line}`),
        `${mta.name} log (this case):`,
        ...mta.log().slice(logStart).slice(-60).map((line) => `  ${line}`),
        'milter log:',
        ...milterLog.slice(-40).map((line) => `  ${line}`),
      ].join('\n'),
    });
  }
  return summary;
}
