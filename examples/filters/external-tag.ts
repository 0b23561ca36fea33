/**
 * Marks mail from outside: prefixes the Subject of messages whose sender is not in one of the
 * configured domains, and refuses recipients on a blocked list at RCPT time. Written once with
 * milterkit/filters, it runs on Postfix, Sendmail and Courier.
 */
import { defineFilter, addressDomain, reject } from '../../src/filter-api/index.js';

interface Options {
  internalDomains: string[];
  prefix: string;
  blockedRecipients: string[];
}

export default defineFilter<Options>({
  name: 'external-tag',
  description: 'prefix the Subject of mail from outside the internal domains',
  options: {
    type: 'object',
    properties: {
      internalDomains: { type: 'array', items: { type: 'string' }, default: [] },
      prefix: { type: 'string', minLength: 1, default: '[EXTERNAL]' },
      blockedRecipients: { type: 'array', items: { type: 'string' }, default: [] },
    },
  },
  edits: ['headers'],
  recipient(_tx, recipient, ctx) {
    if (ctx.options.blockedRecipients.includes(recipient.address.toLowerCase())) return reject('This mailbox accepts no mail', { code: '550', xcode: '5.1.1' });
  },
  message(tx, message, ctx) {
    const domain = addressDomain(tx.sender?.address ?? '');
    if (ctx.options.internalDomains.includes(domain)) return;
    const subject = message.headers.get('Subject');
    if (subject === undefined) message.headers.add('Subject', ctx.options.prefix);
    else if (!subject.startsWith(ctx.options.prefix)) message.headers.change('Subject', 1, `${ctx.options.prefix} ${subject}`);
  },
});
