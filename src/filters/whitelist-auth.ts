/**
 * whitelist_auth: accepts messages whose sender authenticated (SMTP AUTH), so that the rest of the
 * chain — or, with `for`, the filters named there — is skipped for them. Source of the AUTH user:
 * the `{auth_authen}` macro on milter MTAs, the control file's `i` record on Courier.
 *
 * @packageDocumentation
 */
import { accept, defineFilter } from '../filter-api/index.js';

export default defineFilter({
  name: 'whitelist_auth',
  description: 'accept mail from authenticated (SMTP AUTH) senders',
  needs: ['auth'],
  sender: (tx, ctx) => {
    if (tx.auth === undefined) return;
    ctx.log.info({ event: 'whitelisted', user: tx.auth.user }, `accepted: authenticated as ${tx.auth.user}`);
    return accept();
  },
});
