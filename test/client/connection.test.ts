import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Protocol, encodeFrame, encodeReply, type Bytes, type MilterReply, type MtaCommand } from '../../src/protocol/index.js';
import { MilterConnectionError, MilterProtocolError, MilterTimeoutError, MilterUsageError } from '../../src/client/errors.js';
import type { MilterClientOptions } from '../../src/client/connection.js';
import { FakeMilter, FULL_OPTNEG, continueAll, type Answer } from './fake-milter.js';

const client = { hostname: 'mail.example.org', family: 'inet' as const, address: '192.0.2.1', port: 4711 };

async function openMessage(milter: FakeMilter): Promise<void> {
  await milter.connection.negotiate();
  await milter.connection.connect(client);
  await milter.connection.mail('<a@example.org>');
  await milter.connection.rcpt('<b@example.net>');
}

test('negotiation sends the default offer and reads the answer', async () => {
  const milter = new FakeMilter(continueAll({ type: 'optneg', version: 6, actions: 0x11, protocol: Protocol.NOHELO | Protocol.NR_HDR, macros: { 0: 'j {daemon_name}', 5: 'i,{msg_id}' } }));
  const options = await milter.connection.negotiate();
  assert.deepEqual(milter.log, ['optneg 6 0x1ff 0x1fffff']);
  assert.equal(options.version, 6);
  assert.equal(options.actions, 0x11);
  assert.equal(options.protocol, Protocol.NOHELO | Protocol.NR_HDR);
  assert.deepEqual(options.macros, { connect: ['j', '{daemon_name}'], eom: ['i', '{msg_id}'] });
});

test('a milter asking for actions that were not offered fails negotiation and the connection closes', async () => {
  const milter = new FakeMilter(continueAll({ type: 'optneg', version: 6, actions: 0x1ff, protocol: 0 }), { offer: { actions: 0x0f } });
  await assert.rejects(milter.connection.negotiate(), (error: unknown) => error instanceof MilterProtocolError && error.code === 'NEGOTIATION' && /CHGHDRS/.test(error.message));
  assert.equal(milter.closed, true);
  await assert.rejects(milter.connection.connect(client), MilterProtocolError);
});

test('a reply version above the offer is refused strictly (Postfix) and accepted when allowed (Sendmail)', async () => {
  const strict = new FakeMilter(continueAll({ type: 'optneg', version: 6, actions: 0, protocol: 0 }), { offer: { version: 4, protocol: 0x37f } });
  await assert.rejects(strict.connection.negotiate(), /above the offered version 4/);
  const lenient = new FakeMilter(continueAll({ type: 'optneg', version: 6, actions: 0, protocol: 0 }), {
    offer: { version: 4, protocol: 0x37f },
    negotiationChecks: { allowHigherVersion: true },
  });
  assert.equal((await lenient.connection.negotiate()).version, 6);
});

test('protocol bits that were not offered fail strictly and are dropped when ignored', async () => {
  const answer = { type: 'optneg' as const, version: 6, actions: 0, protocol: Protocol.NR_HDR | Protocol.NOHELO };
  const strict = new FakeMilter(continueAll(answer), { offer: { protocol: 0x7f } });
  await assert.rejects(strict.connection.negotiate(), /NR_HDR/);
  const lenient = new FakeMilter(continueAll(answer), { offer: { protocol: 0x7f }, negotiationChecks: { ignoreUnofferedProtocol: true } });
  assert.equal((await lenient.connection.negotiate()).protocol, Protocol.NOHELO);
});

test('an answer with an old version implies that DATA and UNKNOWN are never sent', async () => {
  const milter = new FakeMilter(continueAll({ type: 'optneg', version: 2, actions: 0, protocol: 0 }));
  await openMessage(milter);
  const data = await milter.connection.data();
  const unknown = await milter.connection.unknown('XFOO');
  assert.equal(data.sent, false);
  assert.equal(unknown.sent, false);
  assert.ok(!milter.log.includes('data'));
});

test('commands the milter declined are not sent, but their macros are', async () => {
  const milter = new FakeMilter(continueAll({ type: 'optneg', version: 6, actions: 0, protocol: Protocol.NOHELO | Protocol.NORCPT }));
  await milter.connection.negotiate();
  await milter.connection.connect(client, { macros: { j: 'mx' } });
  const helo = await milter.connection.helo('client.example', { macros: [['{tls_version}', 'TLSv1.3']] });
  await milter.connection.mail('<a@example.org>', { args: ['SIZE=100', 'BODY=8BITMIME'] });
  const rcpt = await milter.connection.rcpt('<b@example.net>', { macros: { '{rcpt_addr}': 'b@example.net' } });
  assert.deepEqual(helo, { stage: 'helo', sent: false, awaited: false, verdict: 'continue', progress: 0 });
  assert.equal(rcpt.sent, false);
  assert.deepEqual(milter.log.slice(1), [
    'DC{j=mx}',
    'connect mail.example.org inet 192.0.2.1:4711',
    'DH{{tls_version}=TLSv1.3}',
    'mail <a@example.org> SIZE=100 BODY=8BITMIME',
    'DR{{rcpt_addr}=b@example.net}',
  ]);
});

test('with NR the reply is not awaited; a reply sent anyway is an UNSOLICITED_REPLY error', async () => {
  let answerHeaders = false;
  const milter = new FakeMilter((command: MtaCommand): Answer => {
    if (command.type === 'optneg') return [{ type: 'optneg', version: 6, actions: 0, protocol: Protocol.NR_HDR }];
    if (command.type === 'header') return answerHeaders ? [{ type: 'continue' }] : undefined;
    return continueAll()(command);
  });
  await openMessage(milter);
  const first = await milter.connection.header('Subject', 'one');
  assert.deepEqual(first, { stage: 'header', sent: true, awaited: false, verdict: 'continue', progress: 0 });
  answerHeaders = true;
  await milter.connection.header('Subject', 'two');
  await new Promise((resolve) => setImmediate(resolve));
  const error = milter.connection.error;
  assert.ok(error instanceof MilterProtocolError && error.code === 'UNSOLICITED_REPLY', String(error));
  assert.match(error.message, /header was negotiated as no-reply/);
  assert.equal(milter.closed, true);
});

test('body data goes in chunks of at most 65535 bytes, macros before each, until a non-continue reply', async () => {
  const milter = new FakeMilter(continueAll());
  await openMessage(milter);
  const body = Buffer.alloc(150_000, 0x61);
  const reply = await milter.connection.body(body, { macros: { i: 'Q1' } });
  assert.equal(reply.verdict, 'continue');
  assert.deepEqual(milter.log.slice(-6), ['DB{i=Q1}', 'body 65535', 'DB{i=Q1}', 'body 65535', 'DB{i=Q1}', 'body 18930']);
  const sent = milter.received.filter((c) => c.type === 'body').map((c) => (c.type === 'body' ? c.chunk : Buffer.alloc(0)));
  assert.deepEqual(Buffer.concat(sent), body);
});

test('SKIP in reply to a body chunk stops the body for this message; end of message still follows', async () => {
  const milter = new FakeMilter((command) => (command.type === 'body' ? [{ type: 'skip' }] : continueAll()(command)));
  await openMessage(milter);
  const first = await milter.connection.body(Buffer.alloc(70_000));
  const again = await milter.connection.body(Buffer.alloc(10));
  const eom = await milter.connection.endOfMessage();
  assert.equal(first.verdict, 'skip');
  assert.equal(again.sent, false);
  assert.equal(milter.received.filter((c) => c.type === 'body').length, 1);
  assert.equal(eom.verdict, 'accept');
});

test('end of message collects modifications and progress in order; consecutive REPLBODY packets join', async () => {
  const milter = new FakeMilter((command) => {
    if (command.type !== 'eob') return continueAll()(command);
    return [
      { type: 'progress' },
      { type: 'addHeader', name: 'X-A', value: 'one' },
      { type: 'replaceBody', chunk: 'new ' },
      { type: 'replaceBody', chunk: 'body\r\n' },
      { type: 'changeHeader', index: 2, name: 'Received', value: '' },
      { type: 'addRcptPar', rcpt: '<c@example.net>', args: 'NOTIFY=NEVER' },
      { type: 'changeFrom', sender: '<bounce@example.org>' },
      { type: 'progress' },
      { type: 'quarantine', reason: 'looks odd' },
      { type: 'replyCode', text: '550 5.7.1 go away' },
    ];
  });
  await openMessage(milter);
  const eom = await milter.connection.endOfMessage({ macros: { i: 'Q1' } });
  assert.equal(eom.verdict, 'reject');
  assert.equal(eom.replyText, '550 5.7.1 go away');
  assert.equal(eom.progress, 2);
  assert.deepEqual(eom.modifications, [
    { type: 'addHeader', name: 'X-A', value: 'one' },
    { type: 'replaceBody', body: Buffer.from('new body\r\n'), packets: 2 },
    { type: 'changeHeader', index: 2, name: 'Received', value: '' },
    { type: 'addRecipient', recipient: '<c@example.net>', args: 'NOTIFY=NEVER' },
    { type: 'changeFrom', sender: '<bounce@example.org>' },
    { type: 'quarantine', reason: 'looks odd' },
  ]);
  assert.deepEqual(milter.log.slice(-2), ['DE{i=Q1}', 'eob']);
});

test('a modification in reply to another command is a MODIFICATION_OUTSIDE_EOM error', async () => {
  const milter = new FakeMilter((command) => (command.type === 'mail' ? [{ type: 'addHeader', name: 'X', value: 'y' }] : continueAll()(command)));
  await milter.connection.negotiate();
  await milter.connection.connect(client);
  await assert.rejects(milter.connection.mail('<a@b>'), (error: unknown) => error instanceof MilterProtocolError && error.code === 'MODIFICATION_OUTSIDE_EOM' && error.stage === 'mail');
});

test('QUARANTINE and PROGRESS before other replies are accepted when lenient (Postfix), refused when strict', async () => {
  const script = (command: MtaCommand): Answer =>
    command.type === 'mail' ? [{ type: 'progress' }, { type: 'quarantine', reason: 'hold it' }, { type: 'continue' }] : continueAll()(command);
  const lenient = new FakeMilter(script, { leniency: { progressAnyStage: true, quarantineAnyStage: true } });
  await lenient.connection.negotiate();
  await lenient.connection.connect(client);
  const mail = await lenient.connection.mail('<a@b>');
  assert.equal(mail.quarantine, 'hold it');
  assert.equal(mail.progress, 1);

  const strict = new FakeMilter(script);
  await strict.connection.negotiate();
  await strict.connection.connect(client);
  await assert.rejects(strict.connection.mail('<a@b>'), (error: unknown) => error instanceof MilterProtocolError && error.code === 'UNEXPECTED_REPLY');
});

test('SHUTDOWN is a verdict when accepted (Postfix) and a protocol error otherwise', async () => {
  const script = (command: MtaCommand): Answer => (command.type === 'connect' ? [{ type: 'shutdown' }] : continueAll()(command));
  const lenient = new FakeMilter(script, { leniency: { acceptShutdown: true } });
  await lenient.connection.negotiate();
  assert.equal((await lenient.connection.connect(client)).verdict, 'shutdown');
  const strict = new FakeMilter(script);
  await strict.connection.negotiate();
  await assert.rejects(strict.connection.connect(client), /shutdown where the protocol does not allow it/);
});

test('an unknown reply byte is an UNKNOWN_REPLY error; a malformed one is MALFORMED_REPLY', async () => {
  const unknown = new FakeMilter((command) => (command.type === 'connect' ? [encodeFrame(0x7a)] : continueAll()(command)));
  await unknown.connection.negotiate();
  await assert.rejects(unknown.connection.connect(client), (error: unknown) => error instanceof MilterProtocolError && error.code === 'UNKNOWN_REPLY');

  const malformed = new FakeMilter((command) => (command.type === 'connect' ? [encodeFrame(0x63, Buffer.from('x'))] : continueAll()(command)));
  await malformed.connection.negotiate();
  await assert.rejects(malformed.connection.connect(client), (error: unknown) => error instanceof MilterProtocolError && error.code === 'MALFORMED_REPLY');
});

test('a packet above the size limit is an OVERSIZED_PACKET error', async () => {
  const milter = new FakeMilter((command) => (command.type === 'eob' ? [{ type: 'replaceBody', chunk: Buffer.alloc(2000) }] : continueAll()(command)), {
    maxReplyPayload: 1000,
  });
  await openMessage(milter);
  await assert.rejects(milter.connection.endOfMessage(), (error: unknown) => error instanceof MilterProtocolError && error.code === 'OVERSIZED_PACKET');
});

test('a milter that does not answer in time fails with MilterTimeoutError naming the stage', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const milter = new FakeMilter((command) => (command.type === 'rcpt' ? undefined : continueAll()(command)), { timeouts: { command: 30_000 } });
  await milter.connection.negotiate();
  await milter.connection.connect(client);
  await milter.connection.mail('<a@b>');
  const rcpt = milter.connection.rcpt('<c@d>');
  const outcome = assert.rejects(rcpt, (error: unknown) => error instanceof MilterTimeoutError && error.stage === 'rcpt' && error.timeoutMs === 30_000);
  await new Promise((resolve) => setImmediate(resolve));
  t.mock.timers.tick(29_999);
  assert.equal(milter.connection.error, undefined);
  t.mock.timers.tick(1);
  await outcome;
  assert.equal(milter.closed, true);
});

test('PROGRESS restarts the end-of-message timer unless the profile caps the total (Sendmail)', async (t) => {
  const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
  const silentAtEom = (command: MtaCommand): Answer => (command.type === 'eob' ? undefined : continueAll()(command));
  t.mock.timers.enable({ apis: ['setTimeout'] });

  // Four gaps of 40 ms, each under the 50 ms limit, 160 ms in all.
  const restarting = new FakeMilter(silentAtEom, { timeouts: { content: 50 } });
  await openMessage(restarting);
  const eom = restarting.connection.endOfMessage();
  for (let i = 0; i < 4; i++) {
    await flush();
    t.mock.timers.tick(40);
    restarting.reply({ type: 'progress' });
  }
  restarting.reply({ type: 'accept' });
  const result = await eom;
  assert.equal(result.verdict, 'accept');
  assert.equal(result.progress, 4);

  const capped = new FakeMilter(silentAtEom, { timeouts: { content: 50, progressRestartsEndOfMessage: false } });
  await openMessage(capped);
  const cappedEom = capped.connection.endOfMessage();
  const outcome = assert.rejects(cappedEom, MilterTimeoutError);
  await flush();
  t.mock.timers.tick(40);
  capped.reply({ type: 'progress' });
  await flush();
  t.mock.timers.tick(40);
  await outcome;
});

test('the milter closing the connection before its reply is a MilterConnectionError', async () => {
  const milter = new FakeMilter((command, fake) => {
    if (command.type === 'helo') {
      queueMicrotask(() => fake.connection.end());
      return undefined;
    }
    return continueAll()(command);
  });
  await milter.connection.negotiate();
  await milter.connection.connect(client);
  await assert.rejects(milter.connection.helo('x'), (error: unknown) => error instanceof MilterConnectionError && error.stage === 'helo');
});

test('commands out of order are refused before anything is sent', async () => {
  const milter = new FakeMilter(continueAll());
  await assert.rejects(milter.connection.connect(client), MilterUsageError);
  await milter.connection.negotiate();
  await assert.rejects(milter.connection.negotiate(), MilterUsageError);
  await milter.connection.connect(client);
  await assert.rejects(milter.connection.rcpt('<b@c>'), /cannot send rcpt now \(between messages\)/);
  await assert.rejects(milter.connection.endOfMessage(), MilterUsageError);
  assert.deepEqual(milter.log, ['optneg 6 0x1ff 0x1fffff', 'connect mail.example.org inet 192.0.2.1:4711']);
});

test('ABORT keeps the connection; QUIT_NC returns to CONNECT without a new negotiation; QUIT closes', async () => {
  const milter = new FakeMilter(continueAll());
  await openMessage(milter);
  await milter.connection.abort();
  await milter.connection.mail('<x@example.org>');
  await milter.connection.quitNewConnection();
  await milter.connection.connect({ hostname: 'localhost', family: 'unknown' });
  await milter.connection.quit();
  assert.deepEqual(milter.log.slice(-5), ['abort', 'mail <x@example.org>', 'quitNc', 'connect localhost unknown', 'quit']);
  assert.equal(milter.closed, true);
  assert.equal(milter.connection.closed, true);
  await assert.rejects(milter.connection.mail('<a@b>'), MilterConnectionError);
});

test('a command payload above the MTA limit is refused (Sendmail sends at most 65535 bytes)', async () => {
  const milter = new FakeMilter(continueAll(), { maxCommandPayload: 65535 });
  await openMessage(milter);
  await assert.rejects(milter.connection.header('X-Big', 'x'.repeat(70_000)), /exceeds this MTA's packet limit of 65535/);
});

test('commands issued without awaiting run in order', async () => {
  const milter = new FakeMilter(continueAll(FULL_OPTNEG));
  const steps = [milter.connection.negotiate(), milter.connection.connect(client), milter.connection.helo('a'), milter.connection.mail('<a@b>')];
  await Promise.all(steps);
  assert.deepEqual(milter.log, ['optneg 6 0x1ff 0x1fffff', 'connect mail.example.org inet 192.0.2.1:4711', 'helo a', 'mail <a@b>']);
});

test('a milter that answers inside write() with a fatal packet fails the command at once and gets nothing more', async () => {
  // The macros of CONNECT are answered, synchronously, with a reply nobody waits for: the
  // connection fails before CONNECT itself is written.
  const milter = new FakeMilter((command, fake) => {
    if (command.type === 'macro') fake.connection.receive(encodeReply({ type: 'continue' }));
    return continueAll()(command);
  }, { timeouts: { command: 50 } });
  await milter.connection.negotiate();
  await assert.rejects(milter.connection.connect(client, { macros: { j: 'mx' } }), (error: unknown) => error instanceof MilterProtocolError && error.code === 'UNSOLICITED_REPLY');
  assert.equal(milter.closed, true);
  assert.deepEqual(milter.log.slice(1), ['DC{j=mx}']);
});

const closingAfterReply: Array<{ name: string; answered: MtaCommand['type']; reply: MilterReply<Bytes>; run(milter: FakeMilter): Promise<unknown> }> = [
  { name: 'negotiation', answered: 'optneg', reply: FULL_OPTNEG, run: (milter) => milter.connection.negotiate() },
  { name: 'CONNECT', answered: 'connect', reply: { type: 'continue' }, run: async (milter) => (await milter.connection.negotiate(), milter.connection.connect(client)) },
  {
    name: 'end of message',
    answered: 'eob',
    reply: { type: 'accept' },
    run: async (milter) => (await openMessage(milter), milter.connection.endOfMessage()),
  },
];

for (const { name, answered, reply, run } of closingAfterReply) {
  test(`a milter that closes right after its reply to ${name} leaves the connection closed`, async () => {
    const milter = new FakeMilter((command, fake) => {
      if (command.type !== answered) return continueAll()(command);
      // The reply and the end of the stream arrive in one read, before the command's continuation runs.
      queueMicrotask(() => {
        fake.connection.receive(encodeReply(reply));
        fake.connection.end();
      });
      return undefined;
    });
    await run(milter);
    assert.equal(milter.connection.closed, true);
    const written = milter.received.length;
    await assert.rejects(milter.connection.helo('client.example'), MilterConnectionError);
    assert.equal(milter.received.length, written, 'nothing written after the milter closed');
  });
}

const overLimit: Array<{ name: string; limits: MilterClientOptions['modificationLimits']; replies: Array<MilterReply<Bytes>>; message: RegExp }> = [
  {
    name: 'a body replacement larger than the byte limit',
    limits: { maxBytes: 2500 },
    replies: [1000, 1000, 1000].map((size) => ({ type: 'replaceBody', chunk: Buffer.alloc(size, 0x61) })),
    message: /more than 2500 bytes of modifications/,
  },
  {
    name: 'more modifications than the count limit',
    limits: { maxCount: 4 },
    replies: Array.from({ length: 5 }, (_, i) => ({ type: 'addRcpt', rcpt: `<r${i}@example.net>` })),
    message: /more than 4 modifications/,
  },
];

for (const { name, limits, replies, message } of overLimit) {
  test(`${name} fails end of message with MODIFICATION_LIMIT and closes the connection`, async () => {
    const milter = new FakeMilter((command) => (command.type === 'eob' ? [...replies, { type: 'accept' }] : continueAll()(command)), { modificationLimits: limits });
    await openMessage(milter);
    await assert.rejects(milter.connection.endOfMessage(), (error: unknown) => error instanceof MilterProtocolError && error.code === 'MODIFICATION_LIMIT' && message.test(error.message));
    assert.equal(milter.closed, true);
  });
}

test('modifications up to the limits are collected; many small body packets join into one body', async () => {
  const chunks = Array.from({ length: 3000 }, (_, i) => Buffer.from([0x30 + (i % 10)]));
  const milter = new FakeMilter(
    (command) => (command.type === 'eob' ? [...chunks.map((chunk) => ({ type: 'replaceBody' as const, chunk })), { type: 'addHeader', name: 'X-A', value: 'b' }, { type: 'accept' }] : continueAll()(command)),
    { modificationLimits: { maxBytes: 3000 + 'X-A\0b\0'.length, maxCount: 2 } },
  );
  await openMessage(milter);
  const eom = await milter.connection.endOfMessage();
  assert.deepEqual(eom.modifications, [
    { type: 'replaceBody', body: Buffer.concat(chunks), packets: 3000 },
    { type: 'addHeader', name: 'X-A', value: 'b' },
  ]);
});

test('modification limits that are not positive integers are a usage error', () => {
  assert.throws(() => new FakeMilter(continueAll(), { modificationLimits: { maxBytes: 0 } }), (error: unknown) => error instanceof MilterUsageError && /maxBytes/.test(error.message));
});
