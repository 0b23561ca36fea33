/**
 * noduplicates: removes recipients named twice in the envelope (after alias expansion on Courier,
 * where one mailbox often appears through several aliases), keeping the first; each removal is
 * logged.
 *
 * @packageDocumentation
 */
import { defineFilter, sameAddress } from '../filter-api/index.js';

export default defineFilter({
  name: 'noduplicates',
  description: 'remove duplicate recipients, keeping the first',
  edits: ['recipients'],
  message(tx, _message, ctx) {
    const seen: string[] = [];
    for (const recipient of ctx.edit.recipients) {
      const occurrence = seen.filter((address) => sameAddress(address, recipient.address)).length + 1;
      seen.push(recipient.address);
      if (occurrence === 1) continue;
      // The earlier copies are kept, so the duplicate is always the second one left.
      ctx.edit.removeRecipient(recipient.address, 2);
      ctx.log.info({ event: 'duplicate-recipient', id: tx.id, recipient: recipient.address }, `removing duplicate recipient <${recipient.address}>`);
    }
  },
});
