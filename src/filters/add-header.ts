/**
 * add_header: adds a header field to every message, at the top or the bottom of the header.
 * `{me}` in the value is the MTA's host name (milter: the `j` macro; Courier: `me`), `{messageId}`
 * its queue id.
 *
 * @packageDocumentation
 */
import { defineFilter } from '../filter-api/index.js';

interface Options {
  name: string;
  value: string;
  position: 'top' | 'bottom';
}

export default defineFilter<Options>({
  name: 'add_header',
  description: 'add a header field to every message',
  options: {
    type: 'object',
    properties: {
      name: { type: 'string', pattern: '^[!-9;-~]+$', default: 'X-Filtered-By' },
      value: { type: 'string', default: 'milterkit on {me}' },
      position: { enum: ['top', 'bottom'], default: 'bottom' },
    },
  },
  edits: ['headers'],
  needs: ['queueId'],
  macros: { connect: ['j'] },
  async message(tx, message, ctx) {
    const me = tx.raw.courier !== undefined ? await tx.raw.courier.me() : (tx.raw.macros?.j ?? '');
    const value = ctx.options.value.replaceAll('{me}', me).replaceAll('{messageId}', tx.queueId ?? '');
    if (ctx.options.position === 'top') message.headers.insert(0, ctx.options.name, value);
    else message.headers.add(ctx.options.name, value);
  },
});
