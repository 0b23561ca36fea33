/**
 * deliveredto: rejects a message that already carries a `Delivered-To:` header naming one of this
 * server's domains: it was delivered here before, so this is a mail loop. The domains: the
 * `localDomains` option on any MTA; on Courier without it, `locals` and `hosteddomains`.
 *
 * @packageDocumentation
 */
import { addressDomain, defineFilter, reject } from '../filter-api/index.js';

interface Options {
  localDomains: string[];
}

/** The domain of the address in a header value (`Name <a@b>` or `a@b`), lower-cased. */
export function domainOf(value: string): string | undefined {
  const address = /<([^>]*)>/.exec(value)?.[1] ?? value.trim();
  return addressDomain(address) || undefined;
}

export default defineFilter<Options, ReadonlySet<string>>({
  name: 'deliveredto',
  description: 'reject mail that was delivered here before (a Delivered-To: naming a local domain)',
  options: { type: 'object', properties: { localDomains: { type: 'array', items: { type: 'string' }, default: [] } } },
  init: ({ options }) => new Set(options.localDomains.map((domain) => domain.toLowerCase())),
  async message(tx, message, ctx) {
    for (const value of message.headers.getAll('Delivered-To')) {
      const domain = domainOf(value);
      if (domain === undefined) continue;
      const courier = ctx.resources.size === 0 ? tx.raw.courier : undefined;
      if (ctx.resources.has(domain) || (courier !== undefined && ((await courier.isLocal(domain)) || (await courier.isHostedDomain(domain))))) {
        // pythonfilter's reply, kept for sites that match on it.
        return reject('Mail loop - already have my Delivered-To: header.', { code: '501' });
      }
    }
  },
});
