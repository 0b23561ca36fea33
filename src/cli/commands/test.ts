/**
 * `milterkit test <filter-module> <message.eml>`: runs a filter module in-process (no socket, no
 * mail server) on a message, as Postfix or Sendmail would, and prints what happened.
 */
import { runTransactionCommand } from '../transaction.js';
import { testMilter } from '../../testing/index.js';
import { loadFilter } from '../load-filter.js';
import { milterFilterOf } from '../../frontends/load.js';

/** Runs the command; resolves to the exit status. */
export async function run(argv: string[]): Promise<number> {
  return runTransactionCommand('test', argv, async (line) => {
    const filter = await milterFilterOf(await loadFilter(line.target));
    const { connectTimeout: _unused, ...clientOptions } = line.client;
    return testMilter(filter, line.message, { ...line.options, clientOptions });
  });
}
