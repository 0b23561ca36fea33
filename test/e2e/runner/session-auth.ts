/** Which messages of a case's SMTP session are authenticated, as the suite's MTAs decide it. */
import { isAccount } from '../harness/sasl.js';
import type { MessageSpec } from './case-file.js';

/**
 * The AUTH identity each message is sent under: an AUTH with an account's credentials
 * authenticates the connection for that message and every later one (a second AUTH is refused
 * with 503); one with wrong credentials leaves it as it was.
 */
export function sessionAuth(messages: readonly MessageSpec[]): Array<{ user: string } | undefined> {
  let auth: { user: string } | undefined;
  return messages.map((message) => {
    if (auth === undefined && message.auth !== undefined && isAccount(message.auth.user, message.auth.password)) auth = { user: message.auth.user };
    return auth;
  });
}
