/**
 * Offline test kit: run a filter in-process, without sockets or a mail server, through the real
 * client and the real milter session joined by an in-memory byte pipe — every byte is the one a
 * socket would carry. Works from any test runner: functions return plain results and throw only
 * for misuse.
 *
 * @example
 * ```ts
 * import { testMilter } from 'milterkit/testing';
 * const report = await testMilter(MyFilter, new URL('./fixtures/spam.eml', import.meta.url), {
 *   from: '<a@example.org>', recipients: ['<b@example.net>'], client: { address: '192.0.2.1' },
 * });
 * assert.equal(report.verdict, 'reject');
 * assert.equal(report.header('X-Spam-Flag'), 'YES');
 * ```
 *
 * @packageDocumentation
 */
export { testMilter, openTestSession, connectInProcess, type TestSession, type InProcessConnection, type MilterTestOptions, type InProcessMilterOptions, type MessageSource } from './kit.js';
export type { DeliveryReport, DeliveryReportData, StageRecord, NegotiationSummary, MessageVerdict, ErrorSummary, MailMessage, HeaderField } from '../mta/index.js';
