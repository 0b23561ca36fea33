/**
 * `milterkit test <filter-module|chain.yaml> <message.eml>`: runs a filter module, or the chain a
 * configuration file describes, in-process (no socket, no mail server) on a message, as Postfix
 * or Sendmail would, and prints what happened.
 */
import { runTransactionCommand } from '../transaction.js';
import { testMilter } from '../../testing/index.js';
import { loadFilter } from '../load-filter.js';
import { milterFilterOf } from '../../frontends/load.js';
import { chainMilter } from '../../frontends/milter.js';
import { startChain } from '../../filter-api/config.js';
import { isConfigFile, loadConfiguration } from '../chain-config.js';

/** Runs the command; resolves to the exit status. */
export async function run(argv: string[]): Promise<number> {
  return runTransactionCommand('test', argv, async (line) => {
    const { connectTimeout: _unused, ...clientOptions } = line.client;
    if (!isConfigFile(line.target)) return testMilter(await milterFilterOf(await loadFilter(line.target)), line.message, { ...line.options, clientOptions });
    const chain = await startChain(await loadConfiguration(line.target));
    try {
      return await testMilter(chainMilter(chain), line.message, { ...line.options, clientOptions });
    } finally {
      await chain.close();
    }
  });
}
