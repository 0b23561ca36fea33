/**
 * What `milterkit test` and `milterkit send` share: their options, the report a person reads, and
 * the exit status.
 *
 * Exit status: 0 accepted (also when quarantined), 3 rejected, 4 temporarily refused, 5 discarded,
 * 6 the milter failed (protocol error, timeout, connection refused or lost, or an answer the MTA
 * refuses as a configuration error), 64 bad usage.
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import type { MilterClientOptions } from '../client/connection.js';
import { MilterClientError, MilterUsageError } from '../client/errors.js';
import { describeModification } from '../client/modifications.js';
import { SocketSpecError } from '../net/socket-spec.js';
import type { MacroStageName } from '../protocol/codec.js';
import { serializeMessage } from '../mta/message.js';
import type { MtaProfile } from '../mta/profile.js';
import { summarizeError, type DeliveryReport, type StageRecord } from '../mta/report.js';
import { resolveProfile, type TransactionOptions } from '../mta/transaction.js';
import { ExitStatus, UsageError } from './exit-status.js';


/** The parsed command line of `test` and `send`. */
export interface TransactionCommandLine {
  /** The filter module (`test`) or socket spec (`send`). */
  target: string;
  /** The message bytes. */
  message: Buffer;
  options: TransactionOptions;
  profile: MtaProfile;
  /** Client options derived from the profile and `--timeout`. */
  client: MilterClientOptions & { connectTimeout: number };
  json: boolean;
}

const macroStages: ReadonlySet<string> = new Set(['connect', 'helo', 'envfrom', 'envrcpt', 'data', 'eoh', 'eom']);

/** Usage text of a command. */
export function usage(command: 'test' | 'send'): string {
  const target = command === 'test' ? '<filter-module|chain.yaml>' : '<socket-spec>';
  const what = command === 'test' ? 'Runs a filter module in-process on a message' : 'Drives a running milter (any language) over its socket with a message';
  return `usage: milterkit ${command} ${target} <message.eml|-> [options]

${what}, as the chosen MTA would, and prints
the negotiated options, each stage's reply, the modifications and the resulting message.

options:
  --from <addr>          MAIL FROM (default: the From: address)
  --rcpt <addr>          RCPT TO, repeatable (default: To:, Cc: and Bcc: addresses)
  --helo <name>          HELO/EHLO name (default: the client's host name)
  --client-ip <addr>     SMTP client address, IPv4 or IPv6 (default 127.0.0.1)
  --client-name <name>   SMTP client's verified host name (default: none, "[addr]")
  --auth <user[:mech]>   the client authenticated (SMTP AUTH) before MAIL FROM as user, with
                         mechanism mech (default PLAIN): the MTA's auth macros, ESMTPA, and on
                         Courier the control file's authenticated sender
  --macro <k=v>          a macro value the MTA knows (sent where its lists name it), repeatable;
                         <stage>:<k=v> sends it at that stage whatever the lists say
                         (stages: connect helo envfrom envrcpt data eoh eom)
  --profile <name>       postfix (default) or sendmail; for test, also courier (filters of
                         milterkit/filters run on the data and control files Courier writes)
  --timeout <seconds>    per-reply time limit instead of the profile's
  --max-modification-bytes <n>
                         most bytes of modifications collected from the milter (default 64 MiB);
                         a milter that sends more fails with exit status 6
  --json                 print the report as JSON
${command === 'send' ? '  socket specs: unix:/path, local:/path, inet:port@host, inet6:port@[::1], inet:host:port\n' : ''}
exit status: 0 accepted, 3 rejected, 4 tempfail, 5 discarded, 6 milter error, 64 usage error
`;
}

/** `--auth user[:mechanism]`; the user may contain `@` but not `:`. */
function parseAuth(spec: string): { user: string; mechanism?: string } {
  const colon = spec.lastIndexOf(':');
  const user = colon < 0 ? spec : spec.slice(0, colon);
  const mechanism = colon < 0 ? undefined : spec.slice(colon + 1);
  if (user === '' || mechanism === '' || /[\s:]/.test(user) || (mechanism !== undefined && !/^[A-Z0-9_-]+$/i.test(mechanism))) {
    throw new UsageError(`--auth needs user or user:MECHANISM (e.g. alice@example.org:PLAIN), got "${spec}"`);
  }
  return mechanism === undefined ? { user } : { user, mechanism: mechanism.toUpperCase() };
}

/**
 * Parses the command line of `test` or `send`.
 * @throws UsageError
 */
export async function parseTransactionArgs(argv: string[]): Promise<TransactionCommandLine | 'help'> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        from: { type: 'string' },
        rcpt: { type: 'string', multiple: true },
        helo: { type: 'string' },
        'client-ip': { type: 'string' },
        'client-name': { type: 'string' },
        auth: { type: 'string' },
        macro: { type: 'string', multiple: true },
        profile: { type: 'string' },
        timeout: { type: 'string' },
        'max-modification-bytes': { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help === true) return 'help';
  if (positionals.length !== 2) throw new UsageError(`expected 2 arguments, got ${positionals.length}`);
  const [target, messagePath] = positionals as [string, string];
  let profile: MtaProfile;
  try {
    profile = resolveProfile(values.profile);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const options: TransactionOptions = { profile };
  if (values.from !== undefined) options.from = values.from;
  if (values.rcpt !== undefined) options.recipients = values.rcpt;
  const client: NonNullable<TransactionOptions['client']> = {};
  if (values['client-ip'] !== undefined) client.address = values['client-ip'];
  if (values['client-name'] !== undefined) client.hostname = values['client-name'];
  if (values.helo !== undefined) client.helo = values.helo;
  options.client = client;
  if (values.auth !== undefined) options.auth = parseAuth(values.auth);
  for (const spec of values.macro ?? []) addMacro(options, spec);
  const clientOptions = { ...profile.client };
  if (values.timeout !== undefined) {
    const seconds = Number(values.timeout);
    if (!(seconds > 0)) throw new UsageError(`--timeout needs a positive number of seconds, got "${values.timeout}"`);
    const ms = Math.round(seconds * 1000);
    clientOptions.timeouts = { ...clientOptions.timeouts, command: ms, content: ms, endOfMessage: ms };
    clientOptions.connectTimeout = ms;
  }
  const maxModificationBytes = values['max-modification-bytes'];
  if (maxModificationBytes !== undefined) {
    const bytes = Number(maxModificationBytes);
    if (!Number.isSafeInteger(bytes) || bytes < 1) throw new UsageError(`--max-modification-bytes needs a positive number of bytes, got "${maxModificationBytes}"`);
    clientOptions.modificationLimits = { ...clientOptions.modificationLimits, maxBytes: bytes };
  }
  let message: Buffer;
  try {
    message = messagePath === '-' ? await readStdin() : await readFile(messagePath);
  } catch (error) {
    throw new UsageError(`cannot read ${messagePath}: ${(error as Error).message}`);
  }
  return { target, message, options, profile, client: clientOptions, json: values.json === true };
}

function addMacro(options: TransactionOptions, spec: string): void {
  const equals = spec.indexOf('=');
  if (equals <= 0) throw new UsageError(`--macro needs name=value, got "${spec}"`);
  let name = spec.slice(0, equals);
  const value = spec.slice(equals + 1);
  const colon = name.indexOf(':');
  if (colon > 0 && macroStages.has(name.slice(0, colon))) {
    const stage = name.slice(0, colon) as MacroStageName;
    name = name.slice(colon + 1);
    options.stageMacros = { ...options.stageMacros, [stage]: { ...options.stageMacros?.[stage], [name]: value } };
  } else {
    options.macros = { ...options.macros, [name]: value };
  }
}

async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** The exit status for a report. */
export function exitStatusOf(report: DeliveryReport): number {
  if (report.error !== undefined || report.configurationError !== undefined) return ExitStatus.ERROR;
  switch (report.verdict) {
    case 'accept':
    case 'abandoned': // nothing refused; the command line always sends the message
      return ExitStatus.ACCEPT;
    case 'reject':
      return ExitStatus.REJECT;
    case 'tempfail':
      return ExitStatus.TEMPFAIL;
    case 'discard':
      return ExitStatus.DISCARD;
  }
}

function describeStage(record: StageRecord): string {
  if (!record.sent) return record.stage === 'close' ? 'socket closed without QUIT' : record.awaited ? '' : 'not sent (milter declined it)';
  if (!record.awaited) return record.stage === 'abort' || record.stage === 'quit' ? '' : 'no reply (milter chose no-reply)';
  let text = record.verdict === undefined || record.verdict === record.reply ? (record.reply ?? '') : `${record.reply} -> ${record.verdict}`;
  if (record.replyText !== undefined) text += ` "${record.replyText.replace(/\r\n/g, '\\r\\n')}"`;
  if (record.progress !== undefined) text += ` (after ${record.progress} progress)`;
  if (record.packets !== undefined && record.packets > 1) text += ` (${record.packets} packets)`;
  return text;
}

/** The report for a person. */
export function formatReport(report: DeliveryReport, profile: MtaProfile): string {
  const lines: string[] = [`profile: ${profile.name} (${profile.product})`];
  if (report.negotiated !== undefined) {
    const n = report.negotiated;
    lines.push(`negotiated: protocol version ${n.version}`);
    lines.push(`  actions:  ${n.actions.join(', ') || 'none'}`);
    lines.push(`  protocol: ${n.protocol.join(', ') || 'none'}`);
    const macros = Object.entries(n.macros).map(([stage, names]) => `${stage}: ${names.length > 0 ? names.join(' ') : '(empty)'}`);
    if (macros.length > 0) lines.push(`  macros:   ${macros.join('; ')}`);
  }
  lines.push('stages:');
  let previous: StageRecord | undefined;
  for (const record of report.stages) {
    const argument = record.argument === undefined ? '' : record.argument.length > 40 ? record.argument.slice(0, 37) + '...' : record.argument;
    lines.push(`  ${record.stage.padEnd(9)} ${argument.padEnd(40)} ${describeStage(record)}`.trimEnd());
    const macros = record.macros?.map(([name, value]) => `${name}=${value}`).join(' ') ?? '';
    // Postfix repeats the same macros before every header: show them once.
    const repeated = previous?.stage === record.stage && previous.macros?.map(([name, value]) => `${name}=${value}`).join(' ') === macros;
    if (macros !== '' && !repeated) lines.push(`            macros: ${macros}`);
    previous = record;
  }
  lines.push('modifications:');
  if (report.modifications.length === 0) lines.push('  (none)');
  for (const modification of report.modifications) lines.push(`  ${describeModification(modification)}`);
  lines.push(`verdict: ${report.verdict}${report.decidedAt === undefined ? '' : ` (at ${report.decidedAt})`}`);
  if (report.smtpReply !== '') lines.push(`smtp reply: ${report.smtpReply.replace(/\r\n/g, '\n            ')}`);
  if (report.held) lines.push(`held (quarantined)${report.quarantine === undefined ? `: ${profile.name} keeps no reason` : `: ${report.quarantine}`}`);
  for (const rejected of report.recipients.rejected) lines.push(`recipient refused: ${rejected.recipient}: ${rejected.reply}`);
  if (report.configurationError !== undefined) lines.push(`configuration error: ${report.configurationError}`);
  if (report.error !== undefined) {
    const error = summarizeError(report.error);
    lines.push(`error: ${error.name}${error.code === undefined ? '' : ` ${error.code}`}: ${error.message}`);
    lines.push(`  ${profile.name} applies its default action: ${profile.defaultAction}`);
  }
  if (report.envelope !== undefined) {
    const sender = report.envelope.sender + (report.envelope.senderArgs === undefined ? '' : ` ${report.envelope.senderArgs}`);
    const recipients = report.envelope.recipients.map((r) => r.address + (r.args === undefined ? '' : ` ${r.args}`));
    lines.push(`envelope: from ${sender} to ${recipients.join(', ')}`);
  }
  if (report.message !== undefined) {
    lines.push(`--- message as ${profile.name} would ${report.held ? 'hold' : 'deliver'} it ---`);
    lines.push(serializeMessage(report.message).toString('utf8').replace(/\r\n/g, '\n').replace(/\n$/, ''));
  }
  return lines.join('\n') + '\n';
}

/**
 * The shared body of `test` and `send`: parse, run, print, and return the exit status.
 * @param execute runs the transaction for the parsed command line
 */
export async function runTransactionCommand(
  command: 'test' | 'send',
  argv: string[],
  execute: (line: TransactionCommandLine) => Promise<DeliveryReport>,
  /** The profile the report is printed for, when it is not the one on the command line. */
  shownAs?: MtaProfile,
): Promise<number> {
  let line: TransactionCommandLine | 'help';
  try {
    line = await parseTransactionArgs(argv);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`milterkit ${command}: ${error.message}\n\n${usage(command)}`);
    return ExitStatus.USAGE;
  }
  if (line === 'help') {
    process.stdout.write(usage(command));
    return 0;
  }
  let report: DeliveryReport;
  try {
    report = await execute(line);
  } catch (error) {
    if (!(error instanceof MilterClientError || error instanceof SocketSpecError)) throw error;
    const usageProblem = error instanceof MilterUsageError || error instanceof SocketSpecError;
    if (line.json) process.stdout.write(JSON.stringify({ error: summarizeError(error) }, null, 2) + '\n');
    else process.stderr.write(`milterkit ${command}: ${error.message}\n`);
    return usageProblem ? ExitStatus.USAGE : ExitStatus.ERROR;
  }
  process.stdout.write(line.json ? JSON.stringify(report, null, 2) + '\n' : formatReport(report, shownAs ?? line.profile));
  return exitStatusOf(report);
}
