/**
 * `milterkit test <filter-module|chain.yaml> <message.eml>`: runs a filter module, or the chain a
 * configuration file describes, in-process (no socket, no mail server) on a message, as Postfix,
 * Sendmail or Courier would, and prints what happened.
 */
import { runTransactionCommand, type TransactionCommandLine } from '../transaction.js';
import { testMilter } from '../../testing/index.js';
import { loadFilter } from '../load-filter.js';
import { milterFilterOf } from '../../frontends/load.js';
import { chainMilter } from '../../frontends/milter.js';
import { Chain } from '../../filter-api/chain.js';
import { isFilterDefinition } from '../../filter-api/contract.js';
import { startChain } from '../../filter-api/config.js';
import { isConfigFile, loadConfiguration } from '../chain-config.js';
import { runOnCourier } from '../../frontends/courier-offline.js';
import { parseMessage } from '../../mta/message.js';
import { postfixProfile } from '../../mta/postfix.js';
import { resolveEnvelope } from '../../mta/session.js';
import type { DeliveryReport } from '../../mta/report.js';

/** How the `courier` profile is shown: Courier's name, the rest of the report as the kit prints it. */
const courierDisplay = { ...postfixProfile, name: 'courier', product: 'Courier global filter, data and control files', defaultAction: 'tempfail' as const };

/** Runs the command; resolves to the exit status. */
export async function run(argv: string[]): Promise<number> {
  // The courier profile is no milter session: the command line is read as for Postfix, then run on Courier's files.
  const at = argv.findIndex((arg, i) => (arg === '--profile' && argv[i + 1] === 'courier') || arg === '--profile=courier');
  const courier = at >= 0;
  const args = courier ? argv.filter((_, i) => i !== at && !(argv[at] === '--profile' && i === at + 1)) : argv;
  return runTransactionCommand(
    'test',
    args,
    async (line) => {
      const { connectTimeout: _unused, ...clientOptions } = line.client;
      const chain = isConfigFile(line.target) ? await startChain(await loadConfiguration(line.target)) : undefined;
      try {
        if (courier) return await runCourier(chain ?? (await oneFilterChain(line.target)), line);
        if (chain === undefined) return testMilter(await milterFilterOf(await loadFilter(line.target)), line.message, { ...line.options, clientOptions });
        return await testMilter(chainMilter(chain), line.message, { ...line.options, clientOptions });
      } finally {
        await chain?.close();
      }
    },
    courier ? courierDisplay : undefined,
  );
}

async function oneFilterChain(target: string): Promise<Chain> {
  const exported = await loadFilter(target);
  if (!isFilterDefinition(exported)) throw new Error(`${target}: the courier profile runs filters of milterkit/filters (defineFilter), not Milter classes`);
  return Chain.load({ filters: [{ filter: exported }] });
}

/** Courier's authenticated sender: from `--auth`, else from a `{auth_authen}` given with `--macro`. */
function authUserOf(line: TransactionCommandLine): { authUser?: string } {
  const user = line.options.auth?.user ?? line.options.macros?.['{auth_authen}'];
  return user ? { authUser: user } : {};
}

function runCourier(chain: Chain, line: TransactionCommandLine): Promise<DeliveryReport> {
  const envelope = resolveEnvelope(parseMessage(line.message), line.options);
  const client = line.options.client ?? {};
  return runOnCourier(chain, line.message, {
    from: envelope.sender,
    recipients: envelope.recipients.map((r) => r.address),
    client: { ...(client.address ? { address: client.address } : {}), ...(client.hostname ? { hostname: client.hostname } : {}), ...(client.helo ? { helo: client.helo } : {}) },
    ...authUserOf(line),
  });
}
