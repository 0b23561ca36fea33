/**
 * The filter API's conformance cases (test/e2e/cases/chain-*.yaml: a chain, messages, envelopes)
 * on Courier. What Courier does with each message is in test/courier/chain-cases.yaml; this runner
 * checks it on the offline `courier` profile, and plays the cases on real Courier (the daemon that
 * courierfilter runs, reloaded with each case's chain), where the profile must also predict exactly
 * what the client was told and what each mailbox got.
 */
import { AssertionError } from 'node:assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml, stringify } from 'yaml';
import { runOnCourier } from '../../src/frontends/courier-offline.js';
import type { DeliveryReport } from '../../src/mta/index.js';
import type { Delivery } from '../e2e/harness/maildir.js';
import { parseMessage } from '../e2e/harness/message.js';
import { casesDir } from '../e2e/harness/paths.js';
import { loadCaseSources, resolveCase, type Case, type DeliveryExpectation } from '../e2e/runner/case-file.js';
import { startCaseChain } from '../e2e/runner/case-chain.js';
import { isAccount } from '../e2e/harness/sasl.js';
import { checkDeliveries } from '../e2e/runner/expectations.js';
import { compareCopies, describeCopy } from '../e2e/runner/offline.js';
import { matchesReply } from '../e2e/runner/patterns.js';
import { sessionAuth } from '../e2e/runner/session-auth.js';
import { buildMessage, playSession } from '../e2e/runner/smtp-session.js';
import { CHROOT_PROJECT_DIR, type CourierChroot } from './courier-chroot.js';
import { repoRoot } from './support.js';

/** What Courier does with one message of a case (one entry of test/courier/chain-cases.yaml). */
export interface CourierExpectation {
  /** The reply to the end of data: a code ("250"), the exact text, or "/regex/". */
  reply: string;
  /** The recipients that get the message (none when omitted). */
  delivered?: string[];
  /** The recipients the chain removed (marked delivered in the control file, logged). */
  removed?: string[];
  /** Exact values of every field of that name in each delivered copy; [] = none. */
  headers?: Record<string, string[]>;
  /** The names of every header field of each delivered copy, in order. */
  order?: string[];
  /** The body of each delivered copy, LF line ends. */
  body?: string;
}

/** A conformance case as Courier plays it, with its expectations. */
export interface CourierCase {
  /** The case with the client's side as Courier answers it, and the chroot's SMTP AUTH account. */
  kase: Case;
  expected: CourierExpectation[];
  /** The AUTH user Courier records (its control file's `i` record) for each message, if any. */
  authUsers: Array<string | undefined>;
}

/** Courier's host name (`me`) in the chroot, which the offline runs take too. */
const COURIER_ME = 'mail.test.example';
/** The SMTP client as Courier sees it: the suite's session (EHLO client.e2e.test) from loopback. */
const SMTP_CLIENT = { address: '127.0.0.1', helo: 'client.e2e.test' };
/**
 * The chroot's account (scripts/prerequisites/30-courier.sh) that stands in for each SMTP AUTH
 * account of the Postfix and Sendmail harness (test/e2e/harness/sasl.ts) the cases log in with.
 */
const COURIER_ACCOUNTS: Readonly<Record<string, { user: string; password: string }>> = {
  'alice@example.org': { user: 'alice', password: 'Secret123' },
};
/** Where the daemon on real Courier finds `filter: scripted` (test/courier/e2e/scripted.ts). */
const SCRIPTED_FILTER_DIR = `${CHROOT_PROJECT_DIR}/dist/test/courier/e2e`;

/**
 * Pairs every chain case with its Courier expectations.
 * @returns the cases, and the names found on one side only (each is a defect of the data)
 */
export function loadCourierCases(): { cases: CourierCase[]; unpaired: string[] } {
  const expectations = parseYaml(readFileSync(join(repoRoot, 'test/courier/chain-cases.yaml'), 'utf8')) as Record<string, CourierExpectation[]>;
  const sources = loadCaseSources(casesDir).filter((source) => source.name.startsWith('chain-'));
  const names = sources.map((source) => source.name);
  const unpaired = [...names.filter((name) => !(name in expectations)), ...Object.keys(expectations).filter((name) => !names.includes(name))];
  const cases = sources.filter((source) => source.name in expectations).map((source) => courierCase(resolveCase(source, 'postfix'), expectations[source.name]!));
  return { cases, unpaired };
}

/**
 * The case as a client of Courier sees it: every MAIL and RCPT accepted (Courier's filters run after DATA)
 * and each end of data answered as the expectations say. The chain, messages and envelopes are the
 * same for every MTA; the Postfix resolution of the file is taken only for them.
 */
function courierCase(kase: Case, expected: CourierExpectation[]): CourierCase {
  if (expected.length !== kase.smtp.messages.length) {
    throw new Error(`${kase.name}: ${kase.smtp.messages.length} message(s) in the case, ${expected.length} in test/courier/chain-cases.yaml`);
  }
  // MAIL is answered before any filter runs, too: the milter MTAs' MAIL reply does not apply.
  const messages = kase.smtp.messages.map(({ mailReply: _milterMtaMailReply, ...message }, index) => ({
    ...message,
    ...(message.auth === undefined ? {} : { auth: courierAccount(message.auth) }),
    to: message.to.map(({ reply: _milterMtaReply, ...recipient }) => recipient),
    reply: expected[index]!.reply,
  }));
  const authUsers = sessionAuth(kase.smtp.messages).map((auth) => (auth === undefined ? undefined : courierAccount(auth).user));
  return { kase: { ...kase, smtp: { ...kase.smtp, messages } }, expected, authUsers };
}

/** The chroot's credentials for a case's AUTH: its stand-in account, a wrong password kept wrong. */
function courierAccount(auth: { user: string; password?: string }): { user: string; password: string } {
  const account = COURIER_ACCOUNTS[auth.user];
  if (account === undefined) throw new Error(`no Courier account stands in for ${auth.user}: add one to 30-courier.sh and COURIER_ACCOUNTS`);
  return auth.password === undefined || isAccount(auth.user, auth.password) ? account : { user: account.user, password: auth.password };
}

/** The messages of a case as the client sends them after DATA. */
export function messagesOf(kase: Case, label: string): Buffer[] {
  const sentAt = new Date();
  return kase.smtp.messages.map((message, index) => buildMessage(message, `${kase.name}.${label}.${index + 1}`, sentAt));
}

/** The offline `courier` profile's outcome of each message of the case, on the same chain and bytes. */
export async function predictOnCourier({ kase, authUsers }: CourierCase, sent: readonly Buffer[]): Promise<DeliveryReport[]> {
  const chain = await startCaseChain(kase.milter.chain!, kase.file);
  try {
    const reports: DeliveryReport[] = [];
    for (const [index, message] of kase.smtp.messages.entries()) {
      const recipients = message.to.map((rcpt) => rcpt.address);
      const authUser = authUsers[index];
      const input = { from: message.from, recipients, client: SMTP_CLIENT, me: COURIER_ME, ...(authUser === undefined ? {} : { authUser }) };
      reports.push(await runOnCourier(chain, sent[index]!, input));
    }
    return reports;
  } finally {
    await chain.close();
  }
}

const bare = (address: string): string => address.replace(/^<(.*)>$/, '$1');

/** The copies a report says Courier delivers: one per recipient still in the envelope. */
function predictedCopies(report: DeliveryReport): Delivery[] {
  const { envelope, raw } = report;
  if (!report.smtpReply.startsWith('2') || envelope === undefined || raw === undefined) return [];
  const message = parseMessage(raw);
  return envelope.recipients.map((recipient) => ({ id: 'predicted', sender: bare(envelope.sender), recipient: bare(recipient.address), ...message }));
}

/** Mismatches between the copies delivered (or predicted) and the expectations; empty when they agree. */
function checkCopies(expected: CourierExpectation[], copies: Delivery[]): string[] {
  const wanted = expected.flatMap((message) =>
    (message.delivered ?? []).map((to) => ({ to, order: message.order, delivery: { to, headers: message.headers, body: message.body } as DeliveryExpectation })),
  );
  const problems = checkDeliveries(
    wanted.map((entry) => entry.delivery),
    copies,
  );
  for (const { to, order } of wanted) {
    const names = copies.find((copy) => copy.recipient === to)?.headers.map((field) => field.name);
    if (order !== undefined && names !== undefined && names.join(', ') !== order.join(', ')) {
      problems.push(`delivery to ${to}: header fields ${names.join(', ')}, expected ${order.join(', ')}`);
    }
  }
  return problems;
}

/** Mismatches between the offline `courier` profile's outcome and the expectations; empty when they agree. */
export function checkPrediction(courierCase: CourierCase, reports: DeliveryReport[]): string[] {
  const problems = reports.flatMap((report, index) => {
    const expected = courierCase.expected[index]!;
    const where = `message ${index + 1}`;
    const removed = report.recipients.rejected.map((rejected) => bare(rejected.recipient));
    return [
      ...(matchesReply(expected.reply, report.smtpReply) ? [] : [`${where}: reply ${JSON.stringify(report.smtpReply)}, expected ${JSON.stringify(expected.reply)}`]),
      ...(removed.join() === (expected.removed ?? []).join() ? [] : [`${where}: removed ${JSON.stringify(removed)}, expected ${JSON.stringify(expected.removed ?? [])}`]),
    ];
  });
  return [...problems, ...checkCopies(courierCase.expected, reports.flatMap(predictedCopies))];
}

/** Courier's queue id in `250 Ok. <id>` differs between runs. */
const normalizeReply = (reply: string): string => reply.replace(/\r\n/g, '\n').replace(/^(250 Ok\. )\S+/, '$1<queue id>');

/** Differences between what real Courier did and the offline prediction (empty when they agree). */
function comparePrediction(finalReplies: readonly string[], delivered: Delivery[], reports: DeliveryReport[]): string[] {
  const problems = reports.flatMap((report, index) => {
    const real = finalReplies[index] ?? '(not sent)';
    return normalizeReply(real) === normalizeReply(report.smtpReply)
      ? []
      : [`message ${index + 1}: the client got ${JSON.stringify(real)}, the profile predicts ${JSON.stringify(report.smtpReply)}`];
  });
  const describe = (copies: Delivery[]) => copies.map((copy) => describeCopy(copy.sender, [copy.recipient], copy));
  problems.push(...compareCopies('delivery', describe(delivered), describe(reports.flatMap(predictedCopies))));
  return problems.map((problem) => `offline prediction (courier profile): ${problem}`);
}

/** The daemon's configuration for a case: the case's chain, which finds the scripted filter in the chroot. */
function daemonConfig(kase: Case): string {
  const chain = kase.milter.chain!;
  const filterPath = (chain.filterPath as string[] | undefined) ?? [];
  return `# ${kase.name}: ${kase.description}\n${stringify({ ...chain, filterPath: [SCRIPTED_FILTER_DIR, ...filterPath] })}`;
}

/**
 * Plays a case on real Courier: reloads the daemon with the case's chain, runs the SMTP session,
 * waits for the deliveries, and checks the replies, the mailboxes and the offline prediction.
 * @returns a one-line summary of what the client and the mailboxes saw
 * @throws AssertionError listing every mismatch, with the SMTP transcript and Courier's log
 */
export async function runOnRealCourier(courier: CourierChroot, courierCase: CourierCase): Promise<string> {
  const { kase, expected } = courierCase;
  const mailbox = await courier.casesMailbox();
  mailbox.reset();
  const logStart = (await courier.log()).length;
  await courier.reloadFilter(daemonConfig(kase));
  const sent = messagesOf(kase, 'courier');
  const session = await playSession(kase.smtp, courier.port, sent);
  const problems = [...session.mismatches];
  for (const reply of session.finalReplies) {
    const queueId = /^250 Ok\. (\S+)/.exec(reply)?.[1];
    if (queueId !== undefined) await courier.waitForCompletion(queueId).catch((error: Error) => problems.push(error.message));
  }
  const delivered = mailbox.deliveries();
  problems.push(...checkCopies(expected, delivered));
  problems.push(...comparePrediction(session.finalReplies, delivered, await predictOnCourier(courierCase, sent)));
  if (problems.length > 0) {
    throw new AssertionError({
      message: [
        `${kase.name} on real Courier: ${kase.description}`,
        ...problems.map((problem) => `  - ${problem}`),
        'SMTP transcript:',
        ...session.transcript.map((line) => `  ${line}`),
        'Courier log (this case):',
        ...(await courier.log()).slice(logStart).split('\n').slice(-60).map((line) => `  ${line}`),
      ].join('\n'),
    });
  }
  return `replies: ${session.finalReplies.join(' ; ')} — delivered: ${delivered.map((delivery) => delivery.recipient).join(', ') || 'none'} — offline prediction matches`;
}
