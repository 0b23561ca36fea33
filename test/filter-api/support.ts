/** Drives a chain directly, as a front-end would, for engine tests. */
import { Chain, type ChainConfig, type MessageOutcome, type RecipientOutcome, type StageOutcome } from '../../src/filter-api/index.js';
import type { AuthInfo } from '../../src/filter-api/transaction.js';
import type { Logger } from '../../src/log.js';

export interface Run {
  start: StageOutcome;
  recipients: RecipientOutcome[];
  outcome?: MessageOutcome;
}

export interface MessageSpec {
  sender?: string;
  recipients?: string[];
  auth?: AuthInfo;
  headers?: Array<{ name: string; value: string }>;
  body?: string;
}

const defaultHeaders = [
  { name: 'From', value: 'Alice <alice@example.org>' },
  { name: 'To', value: 'bob@example.net' },
  { name: 'Subject', value: 'Hello' },
];

/** Runs one message the way the milter front-end does: MAIL, each RCPT, then the message unless refused. */
export async function runMessage(chain: Chain, spec: MessageSpec = {}, connection = chain.connection({ address: '192.0.2.1', helo: 'client.example.org' }, { frontEnd: 'milter' })): Promise<Run> {
  const message = connection.message({ sender: { address: spec.sender ?? 'alice@example.org', args: [] }, ...(spec.auth ? { auth: spec.auth } : {}) });
  const run: Run = { start: await message.start(), recipients: [] };
  if (run.start.kind === 'final') return run;
  for (const address of spec.recipients ?? ['bob@example.net']) {
    const outcome = await message.recipient({ address, args: [] });
    run.recipients.push(outcome);
    if (outcome.kind === 'final') return run;
  }
  if (!run.recipients.some((r) => r.kind === 'continue')) return run;
  run.outcome = await message.message({ headers: spec.headers ?? defaultHeaders, body: Buffer.from(spec.body ?? 'Hi Bob\r\n') });
  return run;
}

/** A logger that keeps its lines. */
export function memoryLogger(): Logger & { lines: Array<{ level: string; fields: object; message: string }> } {
  const lines: Array<{ level: string; fields: object; message: string }> = [];
  const at = (level: string) => (fields: object, message: string) => void lines.push({ level, fields, message });
  const logger = { lines, error: at('error'), warn: at('warn'), info: at('info'), debug: at('debug'), child: () => logger };
  return logger;
}

export function load(config: ChainConfig): Promise<Chain> {
  return Chain.load(config);
}
