/**
 * `milterkit send <socket-spec> <message.eml>`: drives a running milter, written in any language,
 * over its socket with a message, as Postfix or Sendmail would, and prints what happened.
 */
import { connectMilter } from '../../client/socket.js';
import { runTransactionCommand } from '../transaction.js';
import { runTransaction } from '../../mta/index.js';

/** Runs the command; resolves to the exit status. */
export async function run(argv: string[]): Promise<number> {
  return runTransactionCommand('send', argv, async (line) => {
    const connection = await connectMilter(line.target, line.client);
    return runTransaction(connection, line.message, line.options);
  });
}
