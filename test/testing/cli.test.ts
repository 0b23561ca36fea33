import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { MilterServer } from '../../src/index.js';
import { encodeFrame } from '../../src/protocol/index.js';
import Policy from './filters/policy.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const cli = 'dist/src/cli/main.js';
const newsletter = 'test/fixtures/messages/newsletter.eml';

interface Run {
  status: number;
  stdout: string;
  stderr: string;
}

function milterkit(args: string[], input?: string): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [cli, ...args], { cwd: root, encoding: 'utf8' }, (error, stdout, stderr) => {
      const status = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
      resolve({ status, stdout, stderr });
    });
    if (input !== undefined) child.stdin!.end(input);
  });
}

test('milterkit test prints negotiation, stages, modifications and the message; exit 0 on accept', async () => {
  const run = await milterkit(['test', 'test/testing/filters/policy.ts', newsletter, '--client-ip', '192.0.2.10', '--client-name', 'mail.example.org', '--helo', 'mail.example.org', '--macro', 'i=QID9']);
  assert.equal(run.status, 0, run.stderr);
  assert.match(run.stdout, /^profile: postfix \(Postfix 3\.7\.11\)$/m);
  assert.match(run.stdout, /^negotiated: protocol version 6$/m);
  assert.match(run.stdout, /^ {2}connect {3}mail\.example\.org \[192\.0\.2\.10\] +continue$/m);
  assert.match(run.stdout, /^ {2}add header X-Policy "client=mail\.example\.org inet 192\.0\.2\.10; helo=mail\.example\.org; qid=QID9; body=46"$/m);
  assert.match(run.stdout, /^verdict: accept$/m);
  assert.match(run.stdout, /^smtp reply: 250 2\.0\.0 Ok: queued as QID9$/m);
  assert.match(run.stdout, /^--- message as postfix would deliver it ---\nReceived: from mail\.example\.org/m);
  assert.match(run.stdout, /^Subject: \[checked\] subject$/m);
});

test('exit status tells reject (3), tempfail (4), discard (5) and usage errors (64) apart', async () => {
  const spam = await milterkit(['test', 'test/testing/filters/policy.ts', '-', '--from', 'a@example.org', '--rcpt', 'b@example.net'], 'Subject: SPAM\n\nbuy now\n');
  assert.equal(spam.status, 3, spam.stdout + spam.stderr);
  assert.match(spam.stdout, /^smtp reply: 550-5\.7\.1 spam is not welcome$/m);
  const flaky = await milterkit(['test', 'test/testing/filters/policy.ts', newsletter, '--from', 'flaky@example.org', '--profile', 'sendmail']);
  assert.equal(flaky.status, 4);
  assert.match(flaky.stdout, /^smtp reply: 451 4\.3\.0 try again later$/m);
  const discard = await milterkit(['test', 'test/testing/filters/discard.ts', newsletter]);
  assert.equal(discard.status, 5);
  const usage = await milterkit(['test', newsletter]);
  assert.equal(usage.status, 64);
  assert.match(usage.stderr, /expected 2 arguments/);
  const badProfile = await milterkit(['test', 'test/testing/filters/policy.ts', newsletter, '--profile', 'exim']);
  assert.equal(badProfile.status, 64);
});

test('a quarantined message is shown held, not delivered; the reason where the MTA keeps one (Sendmail), none for Postfix 3.7', async () => {
  const sendmail = await milterkit(['test', 'test/testing/filters/quarantine.ts', newsletter, '--profile', 'sendmail']);
  assert.equal(sendmail.status, 0, sendmail.stderr);
  assert.match(sendmail.stdout, /^held \(quarantined\): held for review$/m);
  assert.match(sendmail.stdout, /^--- message as sendmail would hold it ---$/m);
  const postfix = await milterkit(['test', 'test/testing/filters/quarantine.ts', newsletter]);
  assert.match(postfix.stdout, /^held \(quarantined\): postfix keeps no reason$/m);
  assert.match(postfix.stdout, /^--- message as postfix would hold it ---$/m);
  assert.doesNotMatch(postfix.stdout, /would deliver it/);
});

test('--json prints the report as JSON', async () => {
  const run = await milterkit(['test', 'test/testing/filters/policy.ts', newsletter, '--json', '--rcpt', 'blocked@example.net', '--rcpt', 'ok@example.net']);
  assert.equal(run.status, 0);
  const report = JSON.parse(run.stdout);
  assert.equal(report.verdict, 'accept');
  assert.deepEqual(report.recipients.rejected, [{ recipient: '<blocked@example.net>', reply: '550 5.7.1 Command rejected' }]);
  assert.equal(report.negotiated.version, 6);
  assert.ok(report.message.headers.some((h: { name: string }) => h.name === 'X-Policy'));
});

test('milterkit send drives a milter over its socket; a milter that breaks the protocol exits 6', async (t) => {
  const server = new MilterServer({ filter: Policy, socket: 'inet:0@127.0.0.1' });
  await server.listen();
  t.after(() => server.close());
  const run = await milterkit(['send', `inet:${server.port}@127.0.0.1`, newsletter, '--profile', 'sendmail']);
  assert.equal(run.status, 0, run.stderr);
  assert.match(run.stdout, /^profile: sendmail \(Sendmail 8\.17\.1\.9\)$/m);
  assert.match(run.stdout, /^X-Policy: client=localhost inet 127\.0\.0\.1; helo=localhost; qid=\w{14}; body=46$/m);

  // A "milter" that answers OPTNEG with a reply code that does not exist.
  const rogue = net.createServer((socket) => socket.once('data', () => socket.write(encodeFrame(0x7a))));
  await new Promise<void>((resolve) => rogue.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => rogue.close(resolve)));
  const broken = await milterkit(['send', `inet:127.0.0.1:${(rogue.address() as net.AddressInfo).port}`, newsletter]);
  assert.equal(broken.status, 6);
  assert.match(broken.stdout, /^error: MilterProtocolError UNKNOWN_REPLY: unknown reply 'z'/m);
  assert.match(broken.stdout, /^verdict: tempfail$/m);

  const refused = await milterkit(['send', 'unix:/nonexistent/milter.sock', newsletter]);
  assert.equal(refused.status, 6);
  assert.match(refused.stderr, /cannot connect to the milter at \/nonexistent\/milter\.sock/);
});
