/**
 * The offline prediction of a case: the same milter run in-process through the test kit, with the
 * profile of the MTA under test, fed the same bytes; then compared with what the real MTA answered,
 * delivered and held. A difference means the profile does not model that MTA faithfully.
 */
import { MilterConnection } from '../../../src/client/index.js';
import { MtaSession, type DeliveryReport, type EnvelopeInput, type MtaSessionOptions } from '../../../src/mta/index.js';
import { openTestSession } from '../../../src/testing/index.js';
import { headerValues, parseMessage, type ParsedMessage } from '../harness/message.js';
import type { HeldMessage, Mta, MtaName } from '../harness/mta.js';
import type { Delivery } from '../harness/maildir.js';
import type { Case } from './case-file.js';
import { caseFilter } from './case-chain.js';
import { sessionAuth } from './session-auth.js';
import type { SessionOutcome } from './smtp-session.js';

/** What the real MTA did in a case, for comparison. */
export interface Observed {
  session: SessionOutcome;
  delivered: Delivery[];
  held: HeldMessage[];
}

/** The client the suite's SMTP sessions come from, as the MTAs see it. */
function smtpClient(kase: Case) {
  return { address: kase.smtp.client ?? '127.0.0.1', hostname: 'localhost', helo: 'client.e2e.test', port: 0 };
}

/**
 * Runs the case's milter offline against the MTA's profile and the bytes the client sent.
 * @param sent each message of the case as the client sent it after DATA
 */
export async function predict(kase: Case, mta: Mta, sent: Buffer[]): Promise<DeliveryReport[]> {
  const filter = kase.milter.down ? undefined : await caseFilter(kase.milter, kase.file);
  const options = { profile: mta.profile, client: smtpClient(kase), hostname: 'mta.e2e.test' };
  const session: { deliver(message: Buffer, envelope: EnvelopeInput): Promise<DeliveryReport>; close(): Promise<void> } =
    filter === undefined ? unreachableMilter(mta, options) : openTestSession(filter.filter, { ...options, milter: { ...kase.milter.server } });
  const reports: DeliveryReport[] = [];
  const auths = sessionAuth(kase.smtp.messages);
  try {
    for (const [index, message] of kase.smtp.messages.entries()) {
      const auth = auths[index];
      reports.push(
        await session.deliver(sent[index]!, {
          from: message.from,
          fromArgs: message.fromArgs ?? [],
          recipients: message.to.map((rcpt) => ({ address: rcpt.address, args: rcpt.args ?? [] })),
          stopBeforeData: message.data === false,
          ...(auth === undefined ? {} : { auth }),
        }),
      );
    }
  } finally {
    await session.close();
    await filter?.close();
  }
  return reports;
}

/** A session whose milter connection ends before the first reply, as when no milter listens. */
function unreachableMilter(mta: Mta, options: MtaSessionOptions): MtaSession {
  const { connectTimeout: _unused, ...client } = mta.profile.client;
  const connection = new MilterConnection({ write: () => undefined, close: () => undefined }, client);
  connection.end();
  return new MtaSession(connection, mta.profile, options);
}

/** Queue IDs differ between runs: replaced by a placeholder in replies. */
const QUEUE_ID: Readonly<Record<MtaName, RegExp>> = {
  postfix: /(queued as )[0-9A-F]+/,
  sendmail: /^(250 2\.0\.0 )\w{14}( Message accepted)/,
};

function normalizeReply(mta: MtaName, reply: string): string {
  return reply.replace(/\r\n/g, '\n').replace(QUEUE_ID[mta], (_whole, before: string, after = '') => `${before}<queue id>${after}`);
}

/** The reply the client got last in the message: the MAIL, last RCPT, DATA or end-of-data reply. */
function predictedFinalReply(kase: Case, index: number, report: DeliveryReport): string {
  const message = kase.smtp.messages[index]!;
  const noRecipient = report.decidedAt === 'rcpt' && report.recipients.accepted.length === 0 && report.recipients.rejected.length > 0;
  // The suite's client sends no DATA when every recipient was refused, unless told to.
  if (noRecipient && message.dataReply === undefined) return report.recipients.rejected.at(-1)!.reply;
  return report.smtpReply;
}

/** A message as a comparable text: header fields (the MTA's Received: by position only), then the body. */
function describeMessage(message: ParsedMessage): string {
  const fields = message.headers.map((field) => `${field.name}: ${field.name.toLowerCase() === 'received' ? '(the MTA\'s)' : field.value}`);
  return `${fields.join('\n')}\n\n${message.body.toString('latin1')}`;
}

/** One delivery or held copy as comparable text. */
export function describeCopy(sender: string, recipients: readonly string[], message: ParsedMessage, reason?: string): string {
  const held = reason === undefined ? '' : ` (held: ${reason})`;
  return `from <${sender}> to ${recipients.map((r) => `<${r}>`).join(', ')}${held}\n${describeMessage(message)}`;
}

const bare = (address: string): string => address.replace(/^<(.*)>$/, '$1');

/** The first line where two texts differ, for a short problem report. */
function firstDifference(actual: string, predicted: string): string {
  const a = actual.split('\n');
  const p = predicted.split('\n');
  const line = a.findIndex((text, index) => text !== p[index]);
  const at = line < 0 ? a.length : line;
  return `line ${at + 1}: real ${JSON.stringify(a[at] ?? '(end)')}, predicted ${JSON.stringify(p[at] ?? '(end)')}`;
}

/** Compares sorted lists of copies; one problem per copy that differs. */
export function compareCopies(what: string, actual: string[], predicted: string[]): string[] {
  const problems: string[] = [];
  const real = [...actual].sort();
  const offline = [...predicted].sort();
  if (real.length !== offline.length) problems.push(`${what}: the MTA made ${real.length}, the profile predicts ${offline.length}`);
  for (let i = 0; i < Math.min(real.length, offline.length); i++) {
    if (real[i] !== offline[i]) problems.push(`${what} ${i + 1} differs at ${firstDifference(real[i]!, offline[i]!)}`);
  }
  return problems;
}

/** Differences between the offline prediction and what the MTA did (empty when they agree). */
export function comparePrediction(kase: Case, mta: MtaName, observed: Observed, reports: DeliveryReport[]): string[] {
  const problems: string[] = [];
  for (const [index, report] of reports.entries()) {
    const where = `message ${index + 1}`;
    const real = observed.session.finalReplies[index];
    // An abandoned transaction ends with the MTA's own RCPT reply, which the profile does not word.
    if (real !== undefined && report.verdict !== 'abandoned') {
      const predicted = predictedFinalReply(kase, index, report);
      if (normalizeReply(mta, real) !== normalizeReply(mta, predicted)) {
        problems.push(`${where}: the client got ${JSON.stringify(real)}, the profile predicts ${JSON.stringify(predicted)}`);
      }
    }
    for (const rejected of report.recipients.rejected) {
      const got = observed.session.recipientReplies[index]?.find((rcpt) => rcpt.address === rejected.recipient)?.reply;
      if (got === undefined || normalizeReply(mta, got) !== normalizeReply(mta, rejected.reply)) {
        problems.push(`${where}: RCPT ${rejected.recipient} got ${JSON.stringify(got)}, the profile predicts ${JSON.stringify(rejected.reply)}`);
      }
    }
  }
  const copies = (held: boolean) =>
    reports.flatMap((report) => {
      if (report.verdict !== 'accept' || report.held !== held || report.message === undefined || report.envelope === undefined) return [];
      const message = parseMessage(report.raw!);
      const sender = bare(report.envelope.sender);
      const recipients = report.envelope.recipients.map((r) => bare(r.address));
      // Both MTAs hand each recipient its own copy; a held message is one copy for all.
      return held ? [describeCopy(sender, recipients.sort(), message, report.quarantine ?? '(none)')] : recipients.map((r) => describeCopy(sender, [r], message));
    });
  // Delivery status notifications (NOTIFY=SUCCESS) are the MTA's own mail, outside the profile.
  const copiesOfTheMessage = observed.delivered.filter((delivery) => !headerValues(delivery, 'Content-Type').some((type) => /^multipart\/report\b/i.test(type)));
  problems.push(...compareCopies('delivery', copiesOfTheMessage.map((d) => describeCopy(d.sender, [d.recipient], d)), copies(false)));
  problems.push(
    ...compareCopies(
      'held message',
      observed.held.map((h) => describeCopy(h.sender, [...h.recipients].sort(), h, h.reason ?? '(none)')),
      copies(true),
    ),
  );
  return problems.map((problem) => `offline prediction (${mta} profile): ${problem}`);
}
