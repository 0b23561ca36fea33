/** What the runner needs from an MTA under test, whichever it is. */
import type { MtaProfile } from '../../../src/mta/index.js';
import type { Maildir } from './maildir.js';
import type { ParsedMessage } from './message.js';

/** Names used in case files to state per-MTA differences. */
export type MtaName = 'postfix' | 'sendmail';
export const MTA_NAMES: readonly MtaName[] = ['postfix', 'sendmail'];

/** A message the milter quarantined, as the MTA keeps it. */
export interface HeldMessage extends ParsedMessage {
  id: string;
  sender: string;
  recipients: string[];
  /** The quarantine reason where the MTA stores it with the message (Sendmail's `q` line). */
  reason?: string;
}

export interface Mta {
  readonly name: MtaName;
  /** SMTP port, on both 127.0.0.1 and [::1]. */
  readonly smtpPort: number;
  /** Unix socket path where the MTA expects the milter. */
  readonly milterSocket: string;
  readonly mailbox: Maildir;
  /** The offline kit's profile of this MTA with this instance's milter settings (timeouts, failure action). */
  readonly profile: MtaProfile;
  start(): Promise<void>;
  /** Stops the MTA and everything it started; resolves once no process of it is left. */
  stop(): Promise<void>;
  /** Last resort when the test process exits without stop(): kills the MTA synchronously. */
  kill(): void;
  /**
   * Resolves once every message the MTA accepted has left its queue (delivered, bounced or held).
   * @throws WaitTimeoutError with the queue's content when that does not happen in time
   */
  settle(limitMs: number): Promise<void>;
  /** Quarantined messages. */
  held(): Promise<HeldMessage[]>;
  /** Removes every quarantined message and empties the mailbox. */
  clear(): Promise<void>;
  /** The MTA's log so far, oldest line first. */
  log(): string[];
}
