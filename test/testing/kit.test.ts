import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Milter, defineMilter, type MilterOptions, type Verdict } from '../../src/index.js';
import { connectInProcess, openTestSession, testMilter } from '../../src/testing/index.js';
import Policy from './filters/policy.js';

const fixtures = new URL('../../../test/fixtures/messages/', import.meta.url);
const newsletter = new URL('newsletter.eml', fixtures);

test('a filter runs offline on an .eml file: verdict, stages, modifications and the delivered message', async () => {
  const report = await testMilter(Policy, newsletter, {
    client: { address: '192.0.2.10', hostname: 'mail.example.org', helo: 'mail.example.org' },
    macros: { i: 'ABC123' },
  });
  assert.equal(report.verdict, 'accept');
  assert.equal(report.smtpReply, '250 2.0.0 Ok: queued as ABC123');
  assert.equal(report.header('X-Policy'), 'client=mail.example.org inet 192.0.2.10; helo=mail.example.org; qid=ABC123; body=46');
  assert.equal(report.header('Subject'), '[checked] subject');
  assert.equal(report.header('Return-Path'), undefined);
  assert.equal(report.header('List-Unsubscribe'), '<mailto:unsubscribe@example.org>,\n\t<https://example.org/unsubscribe>');
  assert.equal(report.bodyText, 'Café news of the week.\r\n\r\nNothing happened.\r\n');
  // The envelope came from the header: From:, To: and Cc:; the filter added a recipient.
  assert.equal(report.envelope!.sender, '<news@example.org>');
  assert.deepEqual(
    report.envelope!.recipients.map((r) => r.address),
    ['<reader@example.net>', '<second@example.net>', '<archive@example.com>', '<archive@example.org>'],
  );
  assert.deepEqual(report.modifications.map((m) => m.type), ['addHeader', 'changeHeader', 'changeHeader', 'addRecipient']);
  assert.equal(report.stage('eom')!.verdict, 'accept');
  assert.equal(report.stagesOf('rcpt').length, 3);
});

test('a recipient the filter refuses is reported and left out of the envelope', async () => {
  const report = await testMilter(Policy, newsletter, { from: 'news@example.org', recipients: ['blocked@example.net', 'ok@example.net'] });
  assert.deepEqual(report.recipients.rejected, [{ recipient: '<blocked@example.net>', reply: '550 5.7.1 Command rejected' }]);
  assert.deepEqual(report.recipients.accepted, ['<ok@example.net>']);
  assert.equal(report.verdict, 'accept');
});

test('tempfail and multi-line custom replies reach the report as the MTA would send them', async () => {
  const flaky = await testMilter(Policy, newsletter, { from: '<flaky@example.org>', profile: 'sendmail' });
  assert.equal(flaky.verdict, 'tempfail');
  assert.equal(flaky.smtpReply, '451 4.3.0 try again later');
  assert.equal(flaky.decidedAt, 'mail');

  const spam = await testMilter(Policy, 'From: a@example.org\nTo: b@example.net\nSubject: SPAM SPAM\n\nbuy\n');
  assert.equal(spam.verdict, 'reject');
  assert.equal(spam.smtpReply, '550-5.7.1 spam is not welcome\r\n550 5.7.1 second line');
  assert.equal(spam.message, undefined);
});

test('macros the MTA knows reach the filter only where the lists name them', async () => {
  const withAuth = await testMilter(Policy, newsletter, { macros: { '{auth_authen}': 'alice' } });
  assert.equal(withAuth.header('X-Authenticated'), 'alice');
  const sendmail = await testMilter(Policy, newsletter, { macros: { '{auth_authen}': 'alice' }, profile: 'sendmail' });
  assert.equal(sendmail.header('X-Authenticated'), 'alice');
});

test('a large body reaches the filter whole, in chunks of at most 65535 bytes', async () => {
  const chunks: number[] = [];
  const Counter = defineMilter({
    body(_ctx, chunk: Buffer): Verdict {
      chunks.push(chunk.length);
      return 'continue';
    },
  });
  const body = 'x'.repeat(99) + '\n';
  const report = await testMilter(Counter, `From: a@example.org\nTo: b@example.net\n\n${body.repeat(2000)}`);
  assert.equal(report.verdict, 'accept');
  assert.deepEqual(chunks, [65535, 65535, 65535, 5395], 'LF became CRLF: 202000 bytes');
  assert.equal(report.stage('body')!.packets, 4);
});

test('a filter that throws gets the session\'s error verdict (tempfail), reported like any tempfail', async () => {
  class Broken extends Milter {
    override envrcpt(): Verdict {
      throw new Error('database down');
    }
  }
  const report = await testMilter(Broken, newsletter, { milter: { logger: { error() {}, warn() {}, info() {}, debug() {} } } });
  assert.deepEqual(report.recipients.accepted, []);
  assert.deepEqual(report.recipients.rejected.map((r) => r.reply), Array(3).fill('451 4.7.1 Service unavailable - try again later'));
  assert.equal(report.verdict, 'tempfail');
});

test('a session runs several messages on one connection, ABORT after each as Postfix does; the filter keeps its connection data', async () => {
  const seen: string[] = [];
  class Recorder extends Milter {
    static override options: MilterOptions = { actions: ['addHeader'] };
    private count = 0;
    override connect(hostname: string): Verdict {
      seen.push(`connect ${hostname}`);
      return 'continue';
    }
    override envfrom(sender: string): Verdict {
      seen.push(`from ${sender}`);
      return 'continue';
    }
    override eom(): Verdict {
      this.addHeader('X-Count', String(++this.count));
      return 'continue';
    }
    override abort(): void {
      seen.push('abort');
    }
    override close(): void {
      seen.push('close');
    }
  }
  const session = openTestSession(Recorder, { client: { address: '198.51.100.7', hostname: 'relay.example' } });
  const first = await session.deliver(newsletter);
  const second = await session.deliver('From: other@example.org\nTo: b@example.net\n\nhi\n');
  await session.close();
  assert.equal(first.header('X-Count'), '1');
  assert.equal(second.header('X-Count'), '2');
  // ABORT after a completed message reaches no abort() callback: no message is in progress (libmilter does the same).
  assert.deepEqual(seen, ['connect relay.example', 'from <news@example.org>', 'from <other@example.org>', 'close']);
  assert.equal(first.stages.at(-1)!.stage, 'abort');
  assert.deepEqual(second.stages.slice(-2).map((s) => s.stage), ['abort', 'quit']);
});

test('step by step, like pymilter TestCtx: the in-process connection answers each command', async () => {
  class Greylist extends Milter {
    override envrcpt(recipient: string): Verdict {
      return recipient.includes('new') ? 'tempfail' : 'continue';
    }
  }
  const milter = connectInProcess(Greylist);
  const options = await milter.negotiate();
  assert.equal(options.version, 6);
  assert.equal((await milter.connect({ hostname: 'h', family: 'inet', address: '192.0.2.1', port: 25 })).sent, false);
  await milter.mail('<a@example.org>');
  assert.equal((await milter.rcpt('<new@example.net>')).verdict, 'tempfail');
  assert.equal((await milter.rcpt('<old@example.net>')).verdict, 'continue');
  await milter.quit();
  await milter.milterClosed;
});
