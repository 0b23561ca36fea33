import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Protocol, type Bytes, type MilterReply, type MtaCommand } from '../../src/protocol/index.js';
import { MtaSession, postfixProfile, sendmailProfile, runTransaction, type MtaProfile, type TransactionOptions } from '../../src/mta/index.js';
import { FakeMilter, continueAll, type Answer } from './fake-milter.js';

const message = [
  'From: Alice <alice@example.org>',
  'To: bob@example.net',
  'Subject:  two spaces',
  'X-Folded: first',
  '\tsecond',
  'Message-Id: <m1@example.org>',
  '',
  'line one',
  'line two',
].join('\n');

const fixed: TransactionOptions = { from: '<alice@example.org>', recipients: ['<bob@example.net>'], macros: { i: 'QID1' }, date: new Date(0) };

function milterWith(script: (command: MtaCommand) => Answer, profile: MtaProfile): FakeMilter {
  const { connectTimeout: _unused, ...client } = profile.client;
  return new FakeMilter(script, client);
}

async function run(profile: MtaProfile, script: (command: MtaCommand) => Answer = continueAll(), options: TransactionOptions = {}) {
  const milter = milterWith(script, profile);
  const report = await runTransaction(milter.connection, message, { ...fixed, ...options, profile });
  return { milter, report, log: milter.log };
}

const atEom = (...replies: Array<MilterReply<Bytes>>) => (command: MtaCommand): Answer => (command.type === 'eob' ? replies : continueAll()(command));

test('Postfix sends its default macros (no queue ID before a recipient is accepted), D before every header and body chunk, LF-folded values minus one space, ABORT then QUIT', async () => {
  const { log, report } = await run(postfixProfile);
  assert.deepEqual(log, [
    'optneg 6 0x1ff 0x1fffff',
    'DC{j=mx.example.test,{daemon_name}=mx.example.test,{daemon_addr}=127.0.0.1,v=Postfix 3.7.11,_=localhost [127.0.0.1]}',
    'connect localhost inet 127.0.0.1:0',
    'DH{}',
    'helo localhost',
    'DM{{mail_addr}=alice@example.org,{mail_host}=example.org,{mail_mailer}=smtp}',
    'mail <alice@example.org>',
    'DR{{rcpt_addr}=bob@example.net,{rcpt_host}=example.net,{rcpt_mailer}=smtp}',
    'rcpt <bob@example.net>',
    'DT{i=QID1}',
    'data',
    'DL{i=QID1}',
    'header From="Alice <alice@example.org>"',
    'DL{i=QID1}',
    'header To="bob@example.net"',
    'DL{i=QID1}',
    'header Subject=" two spaces"',
    'DL{i=QID1}',
    'header X-Folded="first\\n\\tsecond"',
    'DL{i=QID1}',
    'header Message-Id="<m1@example.org>"',
    'DN{i=QID1}',
    'eoh',
    'DB{i=QID1}',
    'body 20',
    'DE{i=QID1}',
    'eob',
    'abort',
    'quit',
  ]);
  assert.equal(report.verdict, 'accept');
  assert.equal(report.smtpReply, '250 2.0.0 Ok: queued as QID1');
});

test('Postfix has no queue ID before the first accepted recipient', async () => {
  const { log } = await run(postfixProfile, continueAll(), { macros: {}, recipients: ['<b1@example.net>', '<b2@example.net>'] });
  const rcptMacros = log.filter((line) => line.startsWith('DR'));
  assert.ok(!log.find((line) => line.startsWith('DM'))!.includes('i='));
  assert.ok(!rcptMacros[0]!.includes('i='));
  assert.match(rcptMacros[1]!, /^DR\{i=[0-9A-F]{10},/);
});

test('Sendmail sends its m4 default macros, none before headers or body, the queue ID from MAIL on, QUIT without ABORT', async () => {
  const { log } = await run(sendmailProfile);
  assert.deepEqual(log, [
    'optneg 6 0x1ff 0x1fffff',
    'DC{j=mx.example.test,_=localhost [127.0.0.1],{daemon_name}=MTA,{if_name}=mx.example.test,{if_addr}=127.0.0.1}',
    'connect localhost inet 127.0.0.1:0',
    'DH{}',
    'helo localhost',
    'DM{i=QID1,{mail_mailer}=esmtp,{mail_host}=example.org,{mail_addr}=alice@example.org}',
    'mail <alice@example.org>',
    'DR{{rcpt_mailer}=esmtp,{rcpt_host}=example.net,{rcpt_addr}=bob@example.net}',
    'rcpt <bob@example.net>',
    'data',
    'header From="Alice <alice@example.org>"',
    'header To="bob@example.net"',
    'header Subject=" two spaces"',
    'header X-Folded="first\\n\\tsecond"',
    'header Message-Id="<m1@example.org>"',
    'eoh',
    'body 20',
    'DE{{msg_id}=<m1@example.org>}',
    'eob',
    'quit',
  ]);
});

test('HDR_LEADSPC sends header values exactly as they follow the colon', async () => {
  const { log } = await run(postfixProfile, continueAll({ type: 'optneg', version: 6, actions: 0, protocol: Protocol.HDR_LEADSPC }));
  assert.ok(log.includes('header Subject="  two spaces"'));
  assert.ok(log.includes('header From=" Alice <alice@example.org>"'));
});

test('the milter\'s macro lists replace the MTA\'s; an empty list means the global list in Postfix and none in Sendmail', async () => {
  const optneg: MilterReply<Bytes> = { type: 'optneg', version: 6, actions: 0x100, protocol: 0, macros: { 0: '{client_addr} j', 1: '', 5: '{msg_id}' } };
  const postfix = (await run(postfixProfile, continueAll(optneg))).log;
  assert.ok(postfix.includes('DC{{client_addr}=127.0.0.1,j=mx.example.test}'));
  assert.ok(postfix.includes('DH{}'));
  assert.ok(postfix.includes('DE{}'), 'Postfix does not know {msg_id}');
  const sendmail = (await run(sendmailProfile, continueAll(optneg))).log;
  assert.ok(sendmail.includes('DC{{client_addr}=127.0.0.1,j=mx.example.test}'));
  assert.ok(!sendmail.some((line) => line.startsWith('DH')), 'an empty list sends no macros in Sendmail');
  // Sendmail 8.17 quirk: the milter's EOM list is ignored without an EOH list: the m4 default is used.
  assert.ok(sendmail.includes('DE{{msg_id}=<m1@example.org>}'));
});

test('IPv6 clients: Postfix sends the bare address, Sendmail the IPv6: form; unverified names are bracketed', async () => {
  const client = { address: '2001:db8::25', port: 40000, helo: 'client.example' };
  const postfix = (await run(postfixProfile, continueAll(), { client })).log;
  assert.ok(postfix.includes('connect [2001:db8::25] inet6 2001:db8::25:40000'), postfix.join('\n'));
  const sendmail = (await run(sendmailProfile, continueAll(), { client })).log;
  assert.ok(sendmail.includes('connect [IPv6:2001:db8::25] inet6 IPv6:2001:db8::25:40000'), sendmail.join('\n'));
  const mapped = (await run(postfixProfile, continueAll(), { client: { address: '::ffff:192.0.2.7', hostname: 'h.example' } })).log;
  assert.ok(mapped.includes('connect h.example inet 192.0.2.7:0'));
});

test('a reject at CONNECT: Postfix closes without QUIT, Sendmail sends QUIT; the message is refused', async () => {
  const rejectConnect = (command: MtaCommand): Answer => (command.type === 'connect' ? [{ type: 'reject' }] : continueAll()(command));
  const postfix = await run(postfixProfile, rejectConnect);
  assert.deepEqual(postfix.log.slice(-1), ['connect localhost inet 127.0.0.1:0']);
  assert.equal(postfix.milter.closed, true);
  assert.equal(postfix.report.verdict, 'reject');
  assert.equal(postfix.report.smtpReply, '550 5.7.1 Command rejected');
  assert.equal(postfix.report.decidedAt, 'connect');
  const sendmail = await run(sendmailProfile, rejectConnect);
  assert.deepEqual(sendmail.log.slice(-2), ['connect localhost inet 127.0.0.1:0', 'quit']);
  assert.equal(sendmail.report.smtpReply, '554 Command rejected');
});

test('ACCEPT at HELO: the message passes unfiltered; Postfix closes without QUIT, Sendmail quits', async () => {
  const acceptHelo = (command: MtaCommand): Answer => (command.type === 'helo' ? [{ type: 'accept' }] : continueAll()(command));
  const postfix = await run(postfixProfile, acceptHelo);
  assert.equal(postfix.report.verdict, 'accept');
  assert.equal(postfix.report.header('Subject'), 'two spaces');
  assert.equal(postfix.log.at(-1), 'helo localhost');
  assert.equal(postfix.report.stages.at(-1)!.stage, 'close');
  const sendmail = await run(sendmailProfile, acceptHelo);
  assert.deepEqual(sendmail.log.slice(-2), ['helo localhost', 'quit']);
});

test('a rejected recipient is refused alone; the message goes on for the others', async () => {
  const script = (command: MtaCommand): Answer =>
    command.type === 'rcpt' && command.args[0]!.toString() === '<no@example.net>' ? [{ type: 'replyCode', text: '550 5.1.1 no such user' }] : continueAll()(command);
  const { report, log } = await run(postfixProfile, script, { recipients: ['<no@example.net>', '<yes@example.net>'] });
  assert.equal(report.verdict, 'accept');
  assert.deepEqual(report.recipients, { accepted: ['<yes@example.net>'], rejected: [{ recipient: '<no@example.net>', reply: '550 5.1.1 no such user' }] });
  assert.deepEqual(report.envelope!.recipients, [{ address: '<yes@example.net>' }]);
  assert.ok(log.includes('eob'));
});

test('when every recipient is refused there is no DATA; Postfix and Sendmail both ABORT', async () => {
  const script = (command: MtaCommand): Answer => (command.type === 'rcpt' ? [{ type: 'reject' }] : continueAll()(command));
  for (const profile of [postfixProfile, sendmailProfile]) {
    const { report, log } = await run(profile, script);
    assert.equal(report.verdict, 'reject');
    assert.equal(report.smtpReply, profile.noRecipientsReply);
    assert.deepEqual(log.slice(-2), ['abort', 'quit'], profile.name);
    assert.ok(!log.includes('data'));
  }
  const deferred = await run(postfixProfile, (command) => (command.type === 'rcpt' ? [{ type: 'tempfail' }] : continueAll()(command)));
  assert.equal(deferred.report.verdict, 'tempfail');
  assert.equal(deferred.report.smtpReply, '451 4.7.1 Service unavailable - try again later');
});

test('ACCEPT at MAIL ends filtering of the message: no more commands, the message goes through unchanged', async () => {
  const script = (command: MtaCommand): Answer => (command.type === 'mail' ? [{ type: 'accept' }] : continueAll()(command));
  const { report, log } = await run(postfixProfile, script);
  assert.equal(report.verdict, 'accept');
  assert.equal(report.decidedAt, 'mail');
  assert.deepEqual(log.slice(-3), ['mail <alice@example.org>', 'abort', 'quit']);
  assert.equal(report.header('Subject'), 'two spaces');
});

test('DISCARD at MAIL, at a recipient or at end of message drops the whole message; the client gets the ordinary queued reply', async () => {
  const discardAt = (type: MtaCommand['type']) => (command: MtaCommand): Answer => (command.type === type ? [{ type: 'discard' }] : continueAll()(command));
  const accepted = { postfix: '250 2.0.0 Ok: queued as QID1', sendmail: '250 2.0.0 QID1 Message accepted for delivery' };
  for (const profile of [postfixProfile, sendmailProfile]) {
    for (const stage of ['mail', 'rcpt', 'eob'] as const) {
      const { report } = await run(profile, discardAt(stage));
      assert.equal(report.verdict, 'discard', `${profile.name} ${stage}`);
      assert.equal(report.smtpReply, accepted[profile.name as 'postfix' | 'sendmail'], `${profile.name} ${stage}`);
      assert.equal(report.message, undefined);
    }
  }
  // Without a given queue ID, the MTA's own one is in the reply.
  const fresh = await run(sendmailProfile, discardAt('eob'), { macros: {} });
  assert.match(fresh.report.smtpReply, /^250 2\.0\.0 \w{14} Message accepted for delivery$/);
});

test('reply texts at MAIL and RCPT: Sendmail puts "<address>... " after the codes of 450, 550 and 553 and supplies a missing enhanced code; Postfix keeps them (the e2e case reply-text-mail-rcpt)', async () => {
  const cases: Array<{ stage: 'mail' | 'rcpt'; answer: MilterReply<Bytes>; postfix: string; sendmail: string }> = [
    { stage: 'mail', answer: { type: 'replyCode', text: '550 5.7.1 Sender refused' }, postfix: '550 5.7.1 Sender refused', sendmail: '550 5.7.1 <alice@example.org>... Sender refused' },
    { stage: 'mail', answer: { type: 'reject' }, postfix: '550 5.7.1 Command rejected', sendmail: '550 5.7.1 <alice@example.org>... Command rejected' },
    { stage: 'mail', answer: { type: 'tempfail' }, postfix: '451 4.7.1 Service unavailable - try again later', sendmail: '451 4.3.2 Please try again later' },
    { stage: 'rcpt', answer: { type: 'replyCode', text: '450 4.2.2 Mailbox full' }, postfix: '450 4.2.2 Mailbox full', sendmail: '450 4.2.2 <bob@example.net>... Mailbox full' },
    { stage: 'rcpt', answer: { type: 'replyCode', text: '451 4.7.1 Greylisted' }, postfix: '451 4.7.1 Greylisted', sendmail: '451 4.7.1 Greylisted' },
    { stage: 'rcpt', answer: { type: 'replyCode', text: '553 not here' }, postfix: '553 not here', sendmail: '553 5.0.0 <bob@example.net>... not here' },
    { stage: 'rcpt', answer: { type: 'replyCode', text: '554 5.7.1 Policy' }, postfix: '554 5.7.1 Policy', sendmail: '554 5.7.1 Policy' },
    {
      stage: 'rcpt',
      answer: { type: 'replyCode', text: '550-5.7.1 line one\r\n550 5.7.1 line two' },
      postfix: '550-5.7.1 line one\r\n550 5.7.1 line two',
      sendmail: '550-5.7.1 <bob@example.net>... line one\r\n550 5.7.1 line two',
    },
  ];
  for (const { stage, answer, ...expected } of cases) {
    const script = (command: MtaCommand): Answer => (command.type === stage ? [answer] : continueAll()(command));
    for (const profile of [postfixProfile, sendmailProfile]) {
      const { report } = await run(profile, script);
      const reply = stage === 'mail' ? report.smtpReply : report.recipients.rejected[0]?.reply;
      assert.equal(reply, expected[profile.name as 'postfix' | 'sendmail'], `${profile.name} ${stage} ${JSON.stringify(answer)}`);
    }
  }
  // End of message has no address to quote.
  const eom = await run(sendmailProfile, atEom({ type: 'replyCode', text: '550 5.7.1 Spam' }));
  assert.equal(eom.report.smtpReply, '550 5.7.1 Spam');
});

test('a plain reject of a header: Sendmail answers the end of data with 554 (it shows headers to milters only then), Postfix with 550 (the e2e case header-stage-reject)', async () => {
  const rejectHeader = (command: MtaCommand): Answer => (command.type === 'header' ? [{ type: 'reject' }] : continueAll()(command));
  assert.equal((await run(sendmailProfile, rejectHeader)).report.smtpReply, '554 5.7.1 Command rejected');
  assert.equal((await run(postfixProfile, rejectHeader)).report.smtpReply, '550 5.7.1 Command rejected');
});

test('address headers as delivered: Sendmail rewrites the lists and drops Bcc, Return-Path, Content-Length; Postfix drops those before the milter sees them and keeps the rest (the e2e case address-headers)', async () => {
  const addressed = [
    'From: Sender Name <alice@example.org>',
    'To: a@example.com,b@example.com',
    'Cc: Carol <c@example.com>,',
    '\tDave <d@example.com>',
    'Reply-To: x@example.com ,  y@example.com',
    'Sender: "Quoted, Name" <s@example.org>',
    'To: Group: m@example.com,n@example.com;, (comment) o@example.com',
    `Cc: ${Array.from({ length: 8 }, (_, i) => `user0${i}@example.com`).join(',')}`,
    'Bcc: hidden@example.com',
    'Return-Path: <forged@example.org>',
    'Content-Length: 4',
    'X-List: a@example.com,b@example.com',
    'Subject: a,b',
    '',
    'body',
  ].join('\n');
  const deliver = async (profile: MtaProfile) => {
    const milter = milterWith(continueAll(), profile);
    const report = await runTransaction(milter.connection, addressed, { ...fixed, profile });
    return { report, seen: milter.log.filter((line) => line.startsWith('header')).map((line) => line.split('=')[0]!.slice('header '.length)) };
  };
  const sendmail = await deliver(sendmailProfile);
  assert.ok(['Bcc', 'Return-Path', 'Content-Length'].every((name) => sendmail.seen.includes(name)), 'Sendmail shows them to the milter');
  assert.deepEqual(sendmail.report.headers('To').map((h) => h.value), [' a@example.com, b@example.com', ' Group: m@example.com, n@example.com;, (comment) o@example.com']);
  assert.deepEqual(sendmail.report.headers('Cc').map((h) => h.value), [
    ' Carol <c@example.com>, Dave <d@example.com>',
    ' user00@example.com, user01@example.com, user02@example.com,\n        user03@example.com, user04@example.com, user05@example.com,\n        user06@example.com, user07@example.com',
  ]);
  assert.equal(sendmail.report.header('Reply-To'), 'x@example.com, y@example.com');
  assert.equal(sendmail.report.header('Sender'), '"Quoted, Name" <s@example.org>');
  assert.equal(sendmail.report.header('X-List'), 'a@example.com,b@example.com');
  assert.equal(sendmail.report.header('Subject'), 'a,b');
  for (const name of ['Bcc', 'Return-Path', 'Content-Length']) assert.equal(sendmail.report.header(name), undefined, name);

  const postfix = await deliver(postfixProfile);
  assert.ok(!['Bcc', 'Return-Path', 'Content-Length'].some((name) => postfix.seen.includes(name)), 'Postfix removes them before the milter');
  assert.equal(postfix.report.header('To'), 'a@example.com,b@example.com');
  assert.equal(postfix.report.header('Cc'), 'Carol <c@example.com>,\n\tDave <d@example.com>');
  assert.equal(postfix.report.header('Reply-To'), 'x@example.com ,  y@example.com');
  for (const name of ['Bcc', 'Return-Path', 'Content-Length']) assert.equal(postfix.report.header(name), undefined, name);
});

test('custom reply texts: %% becomes %, Postfix refuses a malformed one as a configuration error, Sendmail falls back to its default', async () => {
  const ok = await run(postfixProfile, atEom({ type: 'replyCode', text: '554 5.7.1 100%% spam' }));
  assert.equal(ok.report.verdict, 'reject');
  assert.equal(ok.report.smtpReply, '554 5.7.1 100% spam');
  const badPostfix = await run(postfixProfile, atEom({ type: 'replyCode', text: '250 fine' }));
  assert.equal(badPostfix.report.verdict, 'tempfail');
  assert.equal(badPostfix.report.smtpReply, '451 4.3.5 Server configuration problem');
  assert.match(badPostfix.report.configurationError!, /malformed reply text/);
  const badSendmail = await run(sendmailProfile, atEom({ type: 'replyCode', text: '554 5.7.1 100% spam' }));
  assert.equal(badSendmail.report.verdict, 'reject');
  assert.equal(badSendmail.report.smtpReply, '554 5.7.1 Command rejected');
});

test('modifications are applied as each MTA would: envelope, body with CRLF, headers by its index rules', async () => {
  const script = atEom(
    { type: 'insertHeader', index: 0, name: 'X-Top', value: 'first' },
    { type: 'changeHeader', index: 1, name: 'Subject', value: 'changed' },
    { type: 'addHeader', name: 'X-Multi', value: 'a\n\tb' },
    { type: 'addRcpt', rcpt: 'carol@example.net' },
    { type: 'delRcpt', rcpt: '<BOB@example.net>' },
    { type: 'changeFrom', sender: '<bounce@example.org>', args: 'RET=HDRS' },
    { type: 'replaceBody', chunk: 'new\nbody' },
    { type: 'continue' },
  );
  const postfix = (await run(postfixProfile, script)).report;
  assert.equal(postfix.verdict, 'accept');
  assert.deepEqual(postfix.envelope, { sender: '<bounce@example.org>', senderArgs: 'RET=HDRS', recipients: [{ address: '<carol@example.net>' }] });
  assert.deepEqual(postfix.headers().map((h) => h.name), ['X-Top', 'Received', 'From', 'To', 'Subject', 'X-Folded', 'Message-Id', 'X-Multi']);
  assert.equal(postfix.header('Subject'), 'changed');
  assert.equal(postfix.bodyText, 'new\r\nbody\r\n');
  assert.match(postfix.raw!.toString(), /\r\nX-Multi: a\r\n\tb\r\n\r\nnew\r\nbody\r\n$/);
  assert.equal(postfix.raw!.toString().split('\r\n')[0], 'X-Top: first');

  const sendmail = (await run(sendmailProfile, script)).report;
  // Index 0 links the field after Sendmail's conditional Return-Path: above its Received too.
  assert.deepEqual(sendmail.headers().map((h) => h.name).slice(0, 3), ['X-Top', 'Received', 'From']);
});

test('INSHEADER positions as each MTA delivers them (the e2e case insert-header-at-0): Sendmail counts its nine default entries', async () => {
  const script = atEom(
    { type: 'insertHeader', index: 0, name: 'X-First', value: '0' },
    { type: 'insertHeader', index: 3, name: 'X-Third', value: '3' },
    { type: 'insertHeader', index: 40, name: 'X-Past-End', value: '40' },
    { type: 'continue' },
  );
  const names = async (profile: MtaProfile) => (await run(profile, script)).report.headers().map((h) => h.name);
  assert.deepEqual(await names(postfixProfile), ['X-First', 'Received', 'From', 'X-Third', 'To', 'Subject', 'X-Folded', 'Message-Id', 'X-Past-End']);
  assert.deepEqual(await names(sendmailProfile), ['X-First', 'Received', 'X-Third', 'From', 'To', 'Subject', 'X-Folded', 'Message-Id', 'X-Past-End']);
});

test('Postfix refuses a body replacement split by other edits; Sendmail joins the pieces', async () => {
  const script = atEom(
    { type: 'replaceBody', chunk: 'one ' },
    { type: 'addHeader', name: 'X', value: 'y' },
    { type: 'replaceBody', chunk: 'two' },
    { type: 'accept' },
  );
  const postfix = (await run(postfixProfile, script)).report;
  assert.equal(postfix.verdict, 'tempfail');
  assert.match(postfix.configurationError!, /can't currently be mixed/);
  const sendmail = (await run(sendmailProfile, script)).report;
  assert.equal(sendmail.verdict, 'accept');
  assert.equal(sendmail.bodyText, 'two\r\n');
});

test('QUARANTINE holds the message, not delivers it: at end of message in both MTAs, at any stage in Postfix, which keeps no reason', async () => {
  const quarantined = atEom({ type: 'quarantine', reason: 'suspicious' }, { type: 'continue' });
  const sendmail = (await run(sendmailProfile, quarantined)).report;
  assert.equal(sendmail.verdict, 'accept');
  assert.equal(sendmail.held, true);
  assert.equal(sendmail.quarantine, 'suspicious');
  assert.equal(sendmail.header('Subject'), 'two spaces', 'the held copy');
  const postfix = (await run(postfixProfile, quarantined)).report;
  assert.equal(postfix.held, true);
  assert.equal(postfix.quarantine, undefined);
  const early = (command: MtaCommand): Answer => (command.type === 'mail' ? [{ type: 'quarantine', reason: 'early' }, { type: 'continue' }] : continueAll()(command));
  const postfixEarly = (await run(postfixProfile, early)).report;
  assert.deepEqual([postfixEarly.held, postfixEarly.quarantine], [true, undefined]);
  const sendmailEarly = await run(sendmailProfile, early);
  assert.equal(sendmailEarly.report.error?.name, 'MilterProtocolError');
  assert.equal((await run(postfixProfile)).report.held, false);
});

test('a milter failure applies the default action: Postfix tempfails, Sendmail (no F= flag) delivers unfiltered', async () => {
  const broken = (command: MtaCommand): Answer => (command.type === 'header' ? [{ type: 'addHeader', name: 'X', value: 'too early' }] : continueAll()(command));
  const postfix = await run(postfixProfile, broken);
  assert.equal(postfix.report.verdict, 'tempfail');
  assert.equal(postfix.report.smtpReply, '451 4.7.1 Service unavailable - try again later');
  assert.equal(postfix.report.error?.name, 'MilterProtocolError');
  assert.ok(!postfix.log.includes('abort') && !postfix.log.includes('quit'), 'no ABORT or QUIT on a broken connection');
  const sendmail = await run(sendmailProfile, broken);
  assert.equal(sendmail.report.verdict, 'accept');
  assert.equal(sendmail.report.header('X'), undefined);
  assert.equal(sendmail.report.header('Subject'), 'two spaces');
});

test('SKIP from a header (Postfix) skips the remaining headers; EOH follows', async () => {
  let headers = 0;
  const script = (command: MtaCommand): Answer => (command.type === 'header' && ++headers === 2 ? [{ type: 'skip' }] : continueAll()(command));
  const { log } = await run(postfixProfile, script);
  assert.deepEqual(log.filter((line) => line.startsWith('header')).length, 2);
  assert.ok(log.includes('eoh'));
});

test('several messages on one session: ABORT between them in Postfix, connection data kept', async () => {
  const milter = milterWith(continueAll(), postfixProfile);
  const session = new MtaSession(milter.connection, postfixProfile, { date: new Date(0) });
  const first = await session.deliver(message, { recipients: ['<a@example.net>'] });
  const second = await session.deliver(message, { recipients: ['<b@example.net>'] });
  await session.close();
  assert.equal(first.verdict, 'accept');
  assert.equal(second.verdict, 'accept');
  assert.equal(milter.log.filter((line) => line.startsWith('connect')).length, 1);
  assert.deepEqual(
    milter.log.filter((line) => ['eob', 'abort', 'quit'].includes(line) || line.startsWith('mail')),
    ['mail <alice@example.org>', 'eob', 'abort', 'mail <alice@example.org>', 'eob', 'abort', 'quit'],
  );
  assert.deepEqual(first.stages.at(-1)!.stage, 'abort');
  assert.deepEqual(second.stages.at(-1)!.stage, 'quit');
  assert.equal(second.stages[0]!.stage, 'mail');
});

test('a transaction the client ends before DATA: MAIL and RCPT, then ABORT in both MTAs (Sendmail: the milter is still in the message); the next one goes on', async () => {
  for (const profile of [postfixProfile, sendmailProfile]) {
    const milter = milterWith(continueAll(), profile);
    const session = new MtaSession(milter.connection, profile, { date: new Date(0) });
    const abandoned = await session.deliver(message, { recipients: ['<a@example.net>'], stopBeforeData: true });
    const next = await session.deliver(message, { recipients: ['<b@example.net>'] });
    await session.close();
    assert.equal(abandoned.verdict, 'abandoned', profile.name);
    assert.deepEqual(abandoned.recipients.accepted, ['<a@example.net>']);
    assert.equal(abandoned.message, undefined);
    assert.equal(next.verdict, 'accept');
    const commands = milter.log.filter((line) => ['data', 'eob', 'abort'].includes(line) || /^(mail|rcpt) /.test(line));
    assert.deepEqual(commands.slice(0, 3), ['mail <alice@example.org>', 'rcpt <a@example.net>', 'abort'], profile.name);
    assert.deepEqual(commands.slice(3, 7), ['mail <alice@example.org>', 'rcpt <b@example.net>', 'data', 'eob'], profile.name);
  }
});

test('stage macros given by the user are sent whatever the lists say; known values override the MTA\'s', async () => {
  const { log } = await run(postfixProfile, continueAll(), { macros: { i: 'QID1', '{auth_authen}': 'alice', j: 'other.example' }, stageMacros: { data: { '{x}': '1' } } });
  assert.ok(log.some((line) => line.startsWith('DC{j=other.example,')));
  assert.ok(log.some((line) => line.startsWith('DM{') && line.includes('{auth_authen}=alice')));
  assert.ok(log.includes('DT{i=QID1,{x}=1}'));
});

test('an authenticated envelope: both MTAs send {auth_type} and {auth_authen} at MAIL (Sendmail also {auth_ssf}), {auth_author} from AUTH=, ESMTPA in Received', async () => {
  const auth = { user: 'alice@example.org' };
  const postfix = await run(postfixProfile, continueAll(), { auth, fromArgs: ['AUTH=<alice@example.org>'] });
  assert.equal(
    postfix.log.find((line) => line.startsWith('DM')),
    'DM{{auth_type}=PLAIN,{auth_authen}=alice@example.org,{auth_author}=<alice@example.org>,{mail_addr}=alice@example.org,{mail_host}=example.org,{mail_mailer}=smtp}',
  );
  assert.match(postfix.report.headers('Received')[0]!.value, /\(Postfix\) with ESMTPA id QID1/);
  const sendmail = await run(sendmailProfile, continueAll(), { auth: { ...auth, mechanism: 'LOGIN' } });
  assert.equal(
    sendmail.log.find((line) => line.startsWith('DM')),
    'DM{i=QID1,{auth_type}=LOGIN,{auth_authen}=alice@example.org,{auth_ssf}=0,{mail_mailer}=esmtp,{mail_host}=example.org,{mail_addr}=alice@example.org}',
  );
  assert.match(sendmail.report.headers('Received')[0]!.value, /\[127\.0\.0\.1\]\)\n\t\(authenticated bits=0\)\n\tby .* with ESMTPA id QID1/);
  const anonymous = await run(sendmailProfile);
  assert.match(anonymous.report.headers('Received')[0]!.value, /\[127\.0\.0\.1\]\)\n\tby .* with ESMTP id QID1/);
});
