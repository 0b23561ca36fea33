/** A filter of the filter API, loaded by the Courier daemon as a module. */
import { defineFilter, reject } from '../../../src/filter-api/index.js';

export default defineFilter<{ fail: boolean; failRecipient: boolean; rejectSender: string }>({
  name: 'api-stamp',
  options: { type: 'object', properties: { fail: { type: 'boolean', default: false }, failRecipient: { type: 'boolean', default: false }, rejectSender: { type: 'string', default: '' } } },
  edits: ['headers'],
  sender: (tx, ctx) => (tx.sender?.address === ctx.options.rejectSender ? reject('Sender refused by api-stamp') : undefined),
  recipient(_tx, _recipient, ctx) {
    if (ctx.options.failRecipient) throw new Error('recipient check broke');
  },
  message(_tx, message, ctx) {
    message.headers.add('X-Api-Stamp', 'yes');
    message.headers.add('X-Api-Recipients', String(_tx.recipients.length));
    if (ctx.options.fail) throw new Error('stamp broke');
  },
});
