/**
 * The client drives OpenDKIM, a milter nobody here wrote: one instance signs a test domain with a
 * key generated here by opendkim-genkey, a second one verifies the signed message against that
 * key (served through OpenDKIM's TestDNSData), also through the client.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { connectMilter } from '../../src/client/index.js';
import { parseMessage, runTransaction, serializeMessage, type DeliveryReport, type TransactionOptions } from '../../src/mta/index.js';
import { Daemon, requireProgram, runProgram, tempDir } from './support.js';

const message = await fs.readFile(new URL('../../../examples/messages/hello.eml', import.meta.url));

let work: Awaited<ReturnType<typeof tempDir>>;
let signer: Daemon;
let verifier: Daemon;
let signSocket: string;
let verifySocket: string;

function config(lines: Record<string, string>): string {
  return Object.entries(lines).map(([key, value]) => `${key} ${value}`).join('\n') + '\n';
}

before(async () => {
  const opendkim = requireProgram('opendkim');
  const genkey = requireProgram('opendkim-genkey');
  work = await tempDir('milterkit-opendkim-');
  const keygen = await runProgram(genkey, ['-D', work.dir, '-d', 'example.org', '-s', 'test', '-b', '2048']);
  assert.equal(keygen.status, 0, keygen.stderr);
  // test.txt is a zone-file TXT record: join its quoted strings.
  const zone = await fs.readFile(path.join(work.dir, 'test.txt'), 'utf8');
  const record = [...zone.matchAll(/"([^"]*)"/g)].map((m) => m[1]).join('');
  assert.match(record, /p=[A-Za-z0-9+/=]{300,}/);
  await fs.writeFile(path.join(work.dir, 'dns.txt'), `test._domainkey.example.org ${record}\n`);

  const common = { Syslog: 'no', Background: 'no', RequireSafeKeys: 'no', UMask: '007' };
  signSocket = path.join(work.dir, 'sign.sock');
  verifySocket = path.join(work.dir, 'verify.sock');
  await fs.writeFile(
    path.join(work.dir, 'sign.conf'),
    config({ ...common, Mode: 's', Domain: 'example.org', Selector: 'test', KeyFile: path.join(work.dir, 'test.private'), Canonicalization: 'relaxed/simple', Socket: `local:${signSocket}`, PidFile: path.join(work.dir, 'sign.pid') }),
  );
  await fs.writeFile(
    path.join(work.dir, 'verify.conf'),
    config({ ...common, Mode: 'v', TestDNSData: `file:${path.join(work.dir, 'dns.txt')}`, AuthservID: 'verifier.test', AlwaysAddARHeader: 'yes', Socket: `local:${verifySocket}`, PidFile: path.join(work.dir, 'verify.pid') }),
  );
  signer = new Daemon(opendkim, ['-f', '-x', path.join(work.dir, 'sign.conf')]);
  verifier = new Daemon(opendkim, ['-f', '-x', path.join(work.dir, 'verify.conf')]);
  await Promise.all([signer.waitForSocket(signSocket), verifier.waitForSocket(verifySocket)]);
});

after(async () => {
  await Promise.all([signer?.stop(), verifier?.stop()]);
  await work?.remove();
});

async function send(socket: string, input: Buffer, options: TransactionOptions = {}): Promise<DeliveryReport> {
  const report = await runTransaction(await connectMilter(`unix:${socket}`), input, options);
  assert.equal(report.error, undefined, String(report.error));
  return report;
}

async function verify(signed: Buffer): Promise<string> {
  const report = await send(verifySocket, signed, { client: { address: '203.0.113.9', hostname: 'sender.example' } });
  const results = report.header('Authentication-Results');
  assert.ok(results !== undefined, 'the verifier adds Authentication-Results');
  return results;
}

for (const profile of ['postfix', 'sendmail'] as const) {
  test(`OpenDKIM signs through the client (${profile} profile) and a second OpenDKIM verifies the signature`, async () => {
    const report = await send(signSocket, message, { profile });
    assert.equal(report.verdict, 'accept');
    const insert = report.modifications.find((m) => m.type === 'insertHeader');
    assert.ok(insert !== undefined && insert.type === 'insertHeader' && insert.name === 'DKIM-Signature', JSON.stringify(report.modifications));
    assert.equal(insert.index, 0);
    const signature = report.header('DKIM-Signature')!;
    assert.match(signature, /\bd=example\.org;/);
    assert.match(signature, /\bs=test;/);
    // Index 0 is above the MTA's own Received: in both (Sendmail links it after its hidden Return-Path entry).
    const names = report.headers().map((h) => h.name);
    assert.deepEqual(names.slice(0, 2), ['DKIM-Signature', 'Received']);

    assert.match(await verify(report.raw!), /^verifier\.test;\s+dkim=pass \(2048-bit key\) header\.d=example\.org/);
  });
}

test('Sendmail rewrites the address list the signature covers (To: a,b becomes To: a, b): its delivered copy fails verification, Postfix\'s passes', async () => {
  const listed = Buffer.from(message.toString().replace(/^To: .*$/m, 'To: bob@example.net,carol@example.net'));
  const postfix = await send(signSocket, listed, { profile: 'postfix' });
  assert.equal(postfix.header('To'), 'bob@example.net,carol@example.net');
  assert.match(await verify(postfix.raw!), /dkim=pass/);
  const sendmail = await send(signSocket, listed, { profile: 'sendmail' });
  assert.equal(sendmail.header('To'), 'bob@example.net, carol@example.net');
  assert.match(await verify(sendmail.raw!), /dkim=fail/);
});

test('a tampered body fails verification: the check is real', async () => {
  const signed = (await send(signSocket, message)).message!;
  const tampered = serializeMessage({ ...signed, body: Buffer.from(signed.body.toString().replace('changes', 'CHANGES')) });
  assert.match(await verify(tampered), /dkim=fail/);
});

test('a body of several 64 KiB chunks, with LF line ends in the file, signs and verifies', async () => {
  const lines = Array.from({ length: 4000 }, (_, i) => `line ${i} ${'x'.repeat(40)}`).join('\n');
  const big = Buffer.from(message.toString().replace(/\n\n[\s\S]*$/, `\n\n${lines}\n`));
  const report = await send(signSocket, big);
  assert.ok(report.stage('body')!.packets! >= 3, `body packets: ${report.stage('body')!.packets}`);
  assert.match(await verify(report.raw!), /dkim=pass/);
  // The message parsed back from the delivered bytes is the delivered message.
  assert.deepEqual(parseMessage(report.raw!).headers, report.message!.headers);
});
