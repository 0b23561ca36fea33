import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Chain, defineFilter, reject, tempfail, type ChainEntryConfig } from '../../src/filter-api/index.js';
import { chainMilter } from '../../src/frontends/milter.js';
import { testMilter } from '../../src/testing/index.js';

const message = [
  'Received: from relay1.example.org by relay2.example.org',
  'Received: from origin.example.org by relay1.example.org',
  'From: Alice <alice@example.org>',
  'To: bob@example.net, carol@example.net',
  'Subject: Hello',
  '',
  'Hi Bob',
  '',
].join('\r\n');

const envelope = { from: '<alice@example.org>', recipients: ['<bob@example.net>', '<carol@example.net>'] };

async function run(filters: ChainEntryConfig[], options: Parameters<typeof testMilter>[2] = {}, chainOptions: { shadow?: boolean } = {}) {
  const chain = await Chain.load({ filters, ...chainOptions });
  return testMilter(chainMilter(chain), message, { ...envelope, ...options });
}

for (const profile of ['postfix', 'sendmail'] as const) {
  test(`${profile}: a recipient refusal is answered at RCPT; the others get the message`, async () => {
    const busy = defineFilter({ name: 'busy', recipient: (_tx, rcpt) => (rcpt.address === 'carol@example.net' ? tempfail('Carol is over quota', { code: '452', xcode: '4.2.2' }) : undefined) });
    const report = await run([{ filter: busy }], { profile });
    assert.equal(report.verdict, 'accept');
    assert.deepEqual(report.recipients.accepted, ['<bob@example.net>']);
    assert.equal(report.recipients.rejected.length, 1);
    assert.match(report.recipients.rejected[0]!.reply, /^452 4\.2\.2 Carol is over quota/);
    assert.deepEqual(report.envelope?.recipients.map((r) => r.address), ['<bob@example.net>']);
  });

  test(`${profile}: a sender rejection is answered at MAIL with the filter's reply`, async () => {
    const noAlice = defineFilter({ name: 'no-alice', sender: (tx) => (tx.sender?.address === 'alice@example.org' ? reject(['Not you', 'again'], { code: '553', xcode: '5.7.1' }) : undefined) });
    const report = await run([{ filter: noAlice }], { profile });
    assert.equal(report.verdict, 'reject');
    assert.equal(report.decidedAt, 'mail');
    // Sendmail puts the address before the text of MAIL and RCPT replies.
    assert.match(report.smtpReply, /^553-5\.7\.1 (<alice@example\.org>\.\.\. )?Not you\r?\n553 5\.7\.1 again/);
  });

  test(`${profile}: header edits with several same-name fields arrive as the chain left them`, async () => {
    const rewrite = defineFilter({
      name: 'rewrite',
      edits: ['headers'],
      message(_tx, msg) {
        msg.headers.delete('Received', 1);
        msg.headers.change('Received', 1, 'from origin.example.org (checked)');
        msg.headers.insert(0, 'X-First', 'one');
        msg.headers.insert(2, 'X-Middle', 'two');
        msg.headers.add('X-Last', 'three');
      },
    });
    const sign = defineFilter({ name: 'sign', edits: ['headers'], message: (_tx, msg) => msg.headers.insert(0, 'DKIM-Signature', `v=1; h=${[...msg.headers].map((f) => f.name).join(':')}`) });
    const report = await run([{ filter: rewrite }, { filter: sign }], { profile });
    assert.equal(report.verdict, 'accept');
    const delivered = report.headers().map((f) => `${f.name}:${f.value}`);
    assert.match(delivered[0]!, /^Received: from localhost/, 'the MTA field stays first');
    assert.deepEqual(delivered.slice(1), [
      'DKIM-Signature: v=1; h=X-First:Received:X-Middle:From:To:Subject:X-Last',
      'X-First: one',
      'Received: from origin.example.org (checked)',
      'X-Middle: two',
      'From: Alice <alice@example.org>',
      'To: bob@example.net, carol@example.net',
      'Subject: Hello',
      'X-Last: three',
    ]);
  });

  test(`${profile}: recipient, sender and 8-bit body edits are applied at end of message`, async () => {
    const reroute = defineFilter({
      name: 'reroute',
      edits: ['recipients', 'sender', 'body'],
      async message(_tx, msg, ctx) {
        ctx.edit.removeRecipient('carol@example.net');
        ctx.edit.addRecipient('archive@example.org', { notify: ['NEVER'] });
        ctx.edit.changeSender('bounces@example.org');
        await ctx.edit.replaceBody(Buffer.concat([await msg.bodyBuffer(), Buffer.from('Grüße — ✓\r\n')]));
      },
    });
    const report = await run([{ filter: reroute }], { profile });
    assert.equal(report.verdict, 'accept');
    assert.equal(report.envelope?.sender, '<bounces@example.org>');
    assert.deepEqual(
      report.envelope?.recipients.map((r) => [r.address, r.args ?? '']),
      [
        ['<bob@example.net>', ''],
        ['<archive@example.org>', 'NOTIFY=NEVER'],
      ],
    );
    assert.equal(report.bodyText, 'Hi Bob\r\nGrüße — ✓\r\n');
  });
}

test('only the stages and actions the chain needs are negotiated', async () => {
  const envelopeOnly = defineFilter({ name: 'env', sender: () => undefined });
  const report = await run([{ filter: envelopeOnly }]);
  assert.ok(report.negotiated?.protocol.includes('NOHDRS') && report.negotiated.protocol.includes('NOBODY'));
  assert.deepEqual(report.negotiated?.actions.filter((a) => a !== 'SETSYMLIST'), []);
  assert.equal(report.stage('header')?.sent, false);

  const tagger = defineFilter({ name: 'tag', edits: ['headers'], message: (_tx, msg) => msg.headers.add('X-Tag', 'yes') });
  const tagged = await run([{ filter: tagger }]);
  assert.ok(!tagged.negotiated?.protocol.includes('NOHDRS'));
  assert.ok(tagged.negotiated?.protocol.includes('NR_HDR'), 'headers are collected without replies');
  assert.deepEqual(tagged.negotiated?.actions.filter((a) => a !== 'SETSYMLIST').sort(), ['ADDHDRS', 'CHGHDRS']);
});

test('AUTH from the MTA reaches the transaction; trusting filters skip authenticated senders', async () => {
  let user: string | undefined;
  const seeAuth = defineFilter({ name: 'see', sender: (tx) => void (user = tx.auth?.user) });
  const strict = defineFilter({ name: 'strict', message: () => reject('strict') });
  const report = await run([{ filter: seeAuth }, { filter: strict, trusting: true }], { macros: { '{auth_authen}': 'alice', '{auth_type}': 'PLAIN' } });
  assert.equal(user, 'alice');
  assert.equal(report.verdict, 'accept');
  assert.equal((await run([{ filter: strict, trusting: true }])).verdict, 'reject');
});

test('a filter that throws at RCPT refuses that recipient with the failure reply', async () => {
  const broken = defineFilter({ name: 'broken', recipient: () => Promise.reject(new Error('lookup failed')) });
  const report = await run([{ filter: broken }]);
  assert.equal(report.verdict, 'tempfail');
  assert.deepEqual(report.recipients.accepted, []);
  assert.match(report.recipients.rejected[0]!.reply, /^451 4\.3\.0 /);
});

test('a shadow chain lets everything through unchanged', async () => {
  const harsh = defineFilter({ name: 'harsh', edits: ['headers'], recipient: () => reject('no'), message: (_tx, msg) => msg.headers.add('X-Harsh', 'yes') });
  const report = await run([{ filter: harsh }], {}, { shadow: true });
  assert.equal(report.verdict, 'accept');
  assert.deepEqual(report.modifications, []);
  assert.equal(report.recipients.accepted.length, 2);
});

test('a quarantine decision holds the message with the reason', async () => {
  const { quarantine } = await import('../../src/filter-api/index.js');
  const hold = defineFilter({ name: 'hold', edits: ['quarantine'], message: () => quarantine('looks odd') });
  const report = await run([{ filter: hold }], { profile: 'sendmail' });
  assert.equal(report.verdict, 'accept');
  assert.equal(report.held, true);
  assert.equal(report.quarantine, 'looks odd');
  assert.equal((await run([{ filter: hold }], { profile: 'postfix' })).held, true);
});

test('a filter reads the macros of its stage from tx.raw', async () => {
  const seen: string[] = [];
  const reader = defineFilter({
    name: 'reader',
    macros: { envfrom: ['{mail_addr}'], envrcpt: ['{rcpt_addr}'] },
    sender: (tx) => void seen.push(`sender ${tx.raw.macros?.mail_addr}`),
    recipient: (tx) => void seen.push(`recipient ${tx.raw.macros?.rcpt_addr}`),
    message: (tx) => void seen.push(`message ${tx.raw.macros?.rcpt_addr} ${tx.raw.macros?.i !== undefined}`),
  });
  const report = await run([{ filter: reader }]);
  assert.equal(report.verdict, 'accept');
  assert.deepEqual(seen, ['sender alice@example.org', 'recipient bob@example.net', 'recipient carol@example.net', 'message carol@example.net true']);
});
