/**
 * A filter of the filter API driven by its options, for chain cases: per hook, an optional
 * condition, edits, and a decision, a throw or a hang.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { defineFilter, smtpReply, type Decision, type HookContext, type MessageView, type Transaction } from '../../../src/filter-api/index.js';

type Edit =
  | { addHeader: [string, string] }
  | { insertHeader: [number, string, string] }
  | { changeHeader: [string, number, string] }
  | { deleteHeader: [string, number] }
  | { addRecipient: string }
  | { removeRecipient: string }
  | { replaceBody: string };

interface HookScript {
  /** Regular expression tested against the hook's subject: client address, sender, recipient, or the Subject field. */
  match?: string;
  edits?: Edit[];
  decision?: Decision['kind'];
  /** `NNN X.Y.Z text` for reject and tempfail. */
  reply?: string;
  reason?: string;
  throw?: string;
  hang?: boolean;
}

type Script = Partial<Record<'connect' | 'sender' | 'recipient' | 'message', HookScript>>;

const hookSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    match: { type: 'string' },
    edits: { type: 'array', items: { type: 'object' } },
    decision: { enum: ['continue', 'accept', 'reject', 'tempfail', 'discard', 'quarantine'] },
    reply: { type: 'string' },
    reason: { type: 'string' },
    throw: { type: 'string' },
    hang: { type: 'boolean' },
  },
};

async function perform(script: HookScript | undefined, subject: string, ctx: HookContext<Script, undefined>, message?: MessageView): Promise<Decision | undefined> {
  if (script === undefined || (script.match !== undefined && !new RegExp(script.match).test(subject))) return undefined;
  for (const edit of script.edits ?? []) {
    if ('addHeader' in edit) message!.headers.add(...edit.addHeader);
    else if ('insertHeader' in edit) message!.headers.insert(...edit.insertHeader);
    else if ('changeHeader' in edit) message!.headers.change(...edit.changeHeader);
    else if ('deleteHeader' in edit) message!.headers.delete(...edit.deleteHeader);
    else if ('addRecipient' in edit) ctx.edit.addRecipient(edit.addRecipient);
    else if ('removeRecipient' in edit) ctx.edit.removeRecipient(edit.removeRecipient);
    else await ctx.edit.replaceBody(edit.replaceBody.replace(/\r?\n/g, '\r\n'));
  }
  if (script.throw !== undefined) throw new Error(script.throw);
  if (script.hang) await sleep(2 ** 31 - 1, undefined, { signal: ctx.signal });
  switch (script.decision) {
    case undefined:
    case 'continue':
      return undefined;
    case 'reject':
    case 'tempfail': {
      const [, code, xcode, text] = /^(\d{3})(?: (\d\.\d{1,3}\.\d{1,3}))?(?: (.*))?$/.exec(script.reply ?? '')!;
      return { kind: script.decision, reply: smtpReply(script.decision, text, { code: code!, ...(xcode ? { xcode } : {}) }) };
    }
    case 'quarantine':
      return { kind: 'quarantine', reason: script.reason ?? 'held' };
    default:
      return { kind: script.decision };
  }
}

export default defineFilter<Script>({
  name: 'scripted',
  options: { type: 'object', properties: { connect: hookSchema, sender: hookSchema, recipient: hookSchema, message: hookSchema } },
  edits: ['headers', 'recipients', 'body', 'quarantine'],
  connect: (tx: Transaction, ctx) => perform(ctx.options.connect, tx.client.address ?? '', ctx),
  sender: (tx, ctx) => perform(ctx.options.sender, tx.sender?.address ?? '', ctx),
  recipient: (_tx, recipient, ctx) => perform(ctx.options.recipient, recipient.address, ctx),
  message: (_tx, message, ctx) => perform(ctx.options.message, message.headers.get('Subject') ?? '', ctx, message),
});
