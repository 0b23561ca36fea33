/**
 * One-message runs of the virtual MTA: the built-in profiles by name, and a whole SMTP session with
 * one message through a milter connection.
 */
import type { MilterConnection } from '../client/connection.js';
import { MilterUsageError } from '../client/errors.js';
import type { MtaProfile } from './profile.js';
import { postfixProfile } from './postfix.js';
import type { DeliveryReport } from './report.js';
import { sendmailProfile } from './sendmail.js';
import { MtaSession, type EnvelopeInput, type SessionOptions } from './session.js';
import type { MailMessage } from './message.js';

/** The built-in profiles by name. */
export const profiles: Readonly<Record<'postfix' | 'sendmail', MtaProfile>> = { postfix: postfixProfile, sendmail: sendmailProfile };

/** A profile by name, or the profile itself. @throws MilterUsageError for an unknown name */
export function resolveProfile(profile: string | MtaProfile | undefined): MtaProfile {
  if (profile === undefined) return postfixProfile;
  if (typeof profile !== 'string') return profile;
  const found = (profiles as Record<string, MtaProfile>)[profile];
  if (found === undefined) throw new MilterUsageError(`unknown MTA profile "${profile}" (known: ${Object.keys(profiles).join(', ')})`);
  return found;
}

/** Everything a one-message run needs besides the connection. */
export interface TransactionOptions extends SessionOptions, EnvelopeInput {
  /** `postfix` (default), `sendmail`, or a custom profile. */
  profile?: string | MtaProfile;
}

/**
 * Runs one SMTP session with one message through a negotiated-or-not milter connection, then
 * ends it as the MTA would (QUIT, or just closing after a connection-level verdict).
 */
export async function runTransaction(connection: MilterConnection, message: MailMessage | Buffer | string, options: TransactionOptions = {}): Promise<DeliveryReport> {
  const session = new MtaSession(connection, resolveProfile(options.profile), options);
  const report = await session.deliver(message, options);
  await session.close();
  return report;
}
