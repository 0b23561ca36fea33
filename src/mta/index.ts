/**
 * The virtual MTA (`milterkit/mta`): profiles of Postfix and Sendmail, sessions that drive a
 * milter connection (from `milterkit/client`) as they would, and the application of the milter's
 * changes to the message.
 *
 * @packageDocumentation
 */
export { runTransaction, type TransactionOptions } from './transaction.js';
export { MtaSession, type EnvelopeInput, type SessionOptions as MtaSessionOptions } from './session.js';
export { postfixProfile } from './postfix.js';
export { sendmailProfile } from './sendmail.js';
export type { MtaProfile, MtaState, SmtpAuth, SmtpClient, SmtpOutcome, MacroLists, DefaultAction } from './profile.js';
export { DeliveryReport, type DeliveryReportData, type StageRecord, type NegotiationSummary, type MessageVerdict, type ErrorSummary } from './report.js';
export { parseMessage, serializeMessage, type MailMessage, type HeaderField } from './message.js';
export type { HeaderEdit, HeaderEditRules, HeaderEntry } from './header-edits.js';
export type { DeliveryEnvelope, EnvelopeRecipient } from './apply.js';
