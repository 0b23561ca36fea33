/**
 * noduplicates: removes recipients named twice in the envelope (after alias expansion on Courier,
 * where one mailbox often appears through several aliases), keeping the first; each removal is
 * logged.
 *
 * @packageDocumentation
 */
import { defineFilter, mailboxKey } from '../filter-api/index.js';

export default defineFilter({
  name: 'noduplicates',
  description: 'remove duplicate recipients, keeping the first',
  edits: ['recipients'],
  message(tx, _message, ctx) {
    const seen = new Set<string>();
    ctx.edit.removeRecipientsWhere((recipient) => {
      const key = mailboxKey(recipient.address);
      if (!seen.has(key)) {
        seen.add(key);
        return false;
      }
      ctx.log.info({ event: 'duplicate-recipient', id: tx.id, recipient: recipient.address }, `removing duplicate recipient <${recipient.address}>`);
      return true;
    });
  },
});
