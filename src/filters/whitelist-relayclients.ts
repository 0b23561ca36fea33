/**
 * whitelist_relayclients: accepts messages from clients allowed to relay. Sources: Courier's
 * `RELAYCLIENT` (saved in the control file when `smtpaccess` grants it, or found in `smtpaccess`
 * for the client address); on any MTA, the `relayNetworks` option (addresses and CIDR prefixes).
 *
 * @packageDocumentation
 */
import { BlockList, isIP } from 'node:net';
import { accept, defineFilter } from '../filter-api/index.js';

interface Options {
  relayNetworks: string[];
}

function blockList(networks: readonly string[]): BlockList {
  const list = new BlockList();
  for (const network of networks) {
    const [address, prefix] = network.split('/') as [string, string?];
    const family = isIP(address) === 6 ? 'ipv6' : 'ipv4';
    if (isIP(address) === 0) throw new Error(`relayNetworks: "${network}" is not an address or CIDR prefix`);
    if (prefix === undefined) list.addAddress(address, family);
    else list.addSubnet(address, Number(prefix), family);
  }
  return list;
}

export default defineFilter<Options, BlockList>({
  name: 'whitelist_relayclients',
  description: 'accept mail from clients allowed to relay (Courier smtpaccess, or relayNetworks)',
  options: { type: 'object', properties: { relayNetworks: { type: 'array', items: { type: 'string' }, default: [] } } },
  init: ({ options }) => blockList(options.relayNetworks),
  async connect(tx, ctx) {
    const address = tx.client.address;
    if (address === undefined) return;
    const family = isIP(address) === 6 ? 'ipv6' : 'ipv4';
    const relayed =
      ctx.resources.check(address, family) ||
      tx.raw.environment?.RELAYCLIENT !== undefined ||
      (tx.raw.courier !== undefined && (await tx.raw.courier.isRelayed(address)));
    return relayed ? accept() : undefined;
  },
});
