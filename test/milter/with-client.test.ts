/**
 * Milter-side behaviour seen as the MTA sees it: the filter runs in-process behind the project's
 * client with a Postfix or Sendmail profile, and the assertions are on the message as that MTA
 * would deliver it. The byte-level tests of the same code are in the other files of this folder.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Milter, type MilterOptions } from '../../src/index.js';
import { openTestSession, testMilter } from '../../src/testing/index.js';
import AddHeader from '../../examples/add-header.js';

const message = (subject: string, extra = '') =>
  `From: Alice <alice@example.org>\r\nTo: Bob <bob@example.net>\r\nSubject: ${subject}\r\n${extra}\r\nHello Bob.\r\n`;

for (const profile of ['postfix', 'sendmail'] as const) {
  test(`${profile}: the example filter tags a message and rejects REJECTME with its custom reply`, async () => {
    const tagged = await testMilter(AddHeader, message('hello'), { profile, macros: { i: 'Q42' } });
    assert.equal(tagged.verdict, 'accept');
    assert.match(tagged.header('X-Milterkit') ?? '', /^checked; client=.*queue-id=Q42$/);
    const refused = await testMilter(AddHeader, message('please REJECTME'), { profile });
    assert.equal(refused.verdict, 'reject');
    assert.equal(refused.smtpReply, '550 5.7.1 Message refused by the milterkit example filter');
    assert.equal(refused.message, undefined);
  });

  test(`${profile}: several messages on one connection keep connection state and drop message state`, async () => {
    const seen: string[] = [];
    class PerMessage extends Milter {
      static override options: MilterOptions = { actions: ['addHeader'] };
      private client = '';
      private subjects: string[] = [];
      override connect(hostname: string) {
        this.client = hostname;
      }
      override envfrom() {
        this.subjects = [];
      }
      override header(name: string, value: string) {
        if (name === 'Subject') this.subjects.push(value);
      }
      override eom() {
        seen.push(`${this.client}:${this.subjects.join('+')}`);
        this.addHeader('X-Subjects', String(this.subjects.length));
      }
    }
    const session = openTestSession(PerMessage, { profile, client: { hostname: 'client.example', address: '192.0.2.9' } });
    const first = await session.deliver(message('one'));
    const second = await session.deliver(message('two'));
    await session.close();
    assert.deepEqual(seen, ['client.example:one', 'client.example:two']);
    assert.equal(first.header('X-Subjects'), '1');
    assert.equal(second.header('X-Subjects'), '1');
  });

  test(`${profile}: deleting every X-Trace header from the highest index down leaves none`, async () => {
    class StripReceived extends Milter {
      static override options: MilterOptions = { actions: ['deleteHeader'] };
      private count = 0;
      override header(name: string) {
        if (name.toLowerCase() === 'x-trace') this.count++;
      }
      override eom() {
        for (let i = this.count; i >= 1; i--) this.deleteHeader('X-Trace', i);
      }
    }
    const report = await testMilter(StripReceived, message('trace', 'X-Trace: a\r\nX-Trace: b\r\nX-Trace: c\r\n'), { profile });
    assert.equal(report.verdict, 'accept');
    assert.deepEqual(report.headers('X-Trace'), []);
    assert.equal(report.header('Subject'), 'trace');
  });

  test(`${profile}: a body replaced with 200 KB of 8-bit bytes arrives whole`, async () => {
    const body = Buffer.alloc(200_000, 0xe9);
    for (let i = 998; i < body.length; i += 1000) body.set([0x0d, 0x0a], i);
    class Replace extends Milter {
      static override options: MilterOptions = { actions: ['replaceBody'] };
      override eom() {
        this.replaceBody(body);
      }
    }
    const report = await testMilter(Replace, message('big'), { profile });
    assert.equal(report.verdict, 'accept');
    assert.ok(report.message, 'delivered');
    assert.equal(report.modifications.filter((m) => m.type === 'replaceBody').length >= 1, true);
    assert.deepEqual(Buffer.from(report.message!.body), body);
  });
}
