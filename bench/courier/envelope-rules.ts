/**
 * envelope-rules: the benchmark's counterpart of Courier::Filter::Module::Envelope, written on the
 * filter API. Rejects a message whose envelope sender, or one of whose recipients, matches a
 * regular expression, with Courier::Filter's reply text.
 */
import { defineFilter, reject } from '../../src/filter-api/index.js';

interface Options {
  sender: string;
  recipient: string;
}

const NEVER = '(?!)';

export default defineFilter<Options, { sender: RegExp; recipient: RegExp }>({
  name: 'envelope-rules',
  description: 'reject envelope senders and recipients matching patterns',
  options: {
    type: 'object',
    properties: { sender: { type: 'string', default: NEVER }, recipient: { type: 'string', default: NEVER } },
  },
  init: ({ options }) => ({ sender: new RegExp(options.sender), recipient: new RegExp(options.recipient) }),
  sender(tx, ctx) {
    const address = tx.sender?.address ?? '';
    if (ctx.resources.sender.test(address)) return reject(`Prohibited sender detected: ${address}`);
  },
  recipient(_tx, recipient, ctx) {
    if (ctx.resources.recipient.test(recipient.address)) return reject(`Prohibited recipient detected: ${recipient.address}`);
  },
});
