import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { loadCourierChain } from '../../src/cli/courier-settings.js';
import { FilterChain } from '../../src/courier/chain.js';
import { CourierConfig } from '../../src/courier/helpers/config.js';
import * as control from '../../src/courier/helpers/control.js';
import { formatReply } from '../../src/courier/reply.js';
import { settingsFromObject } from '../../src/courier/settings.js';
import { Chain, defineFilter, discard, quarantine, reject, tempfail, type ChainEntryConfig } from '../../src/filter-api/index.js';
import { runChainOnCourierMessage, toCrlf } from '../../src/frontends/courier.js';
import { copySpool, etcFixture, memoryLogger, scratchPerSuite } from '../courier/support.js';

const modulesDir = fileURLToPath(new URL('../courier/modules/', import.meta.url));

/** D-plain with the three undelivered recipients of C-real-alias-duplicate (alice twice, carol). */
async function message(dir: string) {
  const [dataPath, controlPath] = await copySpool(dir, 'D-plain', 'C-real-alias-duplicate');
  return { dataPath: dataPath!, controlPaths: [controlPath!] };
}

async function runChain(dir: string, filters: ChainEntryConfig[]) {
  const request = await message(dir);
  const { logger, records } = memoryLogger();
  const chain = await Chain.load({ filters });
  const reply = await runChainOnCourierMessage(chain, request, { logger });
  const data = control.controlDataOf(await control.readControlFiles(request.controlPaths));
  return { reply, records, request, recipients: data.recipients.map((r) => r.address), text: await readFile(request.dataPath, 'utf8') };
}

describe('Courier front-end: bodies as filters see them', () => {
  const CASES: Array<[string, string]> = [
    ['', ''],
    ['no line end', 'no line end'],
    ['a\nb\n', 'a\r\nb\r\n'],
    ['\n\nlast', '\r\n\r\nlast'],
    ['already\r\ncrlf\r\n', 'already\r\ncrlf\r\n'],
    ['mixed\r\nbare\nlone\rcr\n', 'mixed\r\nbare\r\nlone\rcr\r\n'],
  ];
  for (const [lf, crlf] of CASES) {
    it(`LF line ends become CRLF: ${JSON.stringify(lf)}`, () => {
      assert.equal(toCrlf(Buffer.from(lf, 'latin1')).toString('latin1'), crlf);
    });
  }
});

describe('Courier front-end of the filter API', () => {
  const scratch = scratchPerSuite();

  it('reads the transaction from the control files and runs every hook at end of DATA, in order', async () => {
    const seen: string[] = [];
    const observer = defineFilter({
      name: 'observer',
      connect: (tx) => void seen.push(`connect ${tx.client.address} ${tx.client.helo}`),
      sender: (tx) => void seen.push(`sender ${tx.sender?.address} ${tx.queueId}`),
      recipient: (_tx, rcpt) => void seen.push(`rcpt ${rcpt.address} ${rcpt.args.join(' ')}`),
      message: (tx, msg) => void seen.push(`message ${tx.recipients.length} ${msg.headers.get('Subject')} ${msg.messagePath !== undefined}`),
    });
    const { reply } = await runChain(scratch.dir, [{ filter: observer }]);
    assert.equal(reply, '');
    assert.deepEqual(seen, [
      'connect 127.0.0.1 client.example',
      'sender bob@sender.example 000000000016A663.000000006B0276D1.0000233C',
      'rcpt alice@mail.test.example ',
      'rcpt alice@mail.test.example NOTIFY=NEVER',
      'rcpt carol@mail.test.example NOTIFY=NEVER',
      'message 3 Hello true',
    ]);
  });

  it('marks the message 8-bit in the control file when a new body has 8-bit bytes, as submit does', async () => {
    const controlOf = async (body: string) => {
      const replacer = defineFilter({ name: 'replacer', edits: ['body'], message: (_tx, _msg, ctx) => ctx.edit.replaceBody(Buffer.from(body, 'utf8')) });
      const { reply, request } = await runChain(scratch.dir, [{ filter: replacer }]);
      assert.equal(reply, '');
      return control.controlDataOf(await control.readControlFiles(request.controlPaths));
    };
    assert.equal((await controlOf('plain ASCII\r\n')).eightBitBody, false);
    assert.equal((await controlOf('Grüße aus Köln\r\n')).eightBitBody, true);
  });

  it('writes header, body and recipient edits into the data and control files', async () => {
    const editor = defineFilter({
      name: 'editor',
      edits: ['headers', 'recipients', 'body'],
      async message(_tx, msg, ctx) {
        msg.headers.insert(0, 'X-First', 'one');
        msg.headers.change('Subject', 1, 'Grüße');
        msg.headers.delete('X-Folded');
        msg.headers.insert(msg.headers.length, 'X-Last', 'last');
        ctx.edit.removeRecipient('carol@mail.test.example');
        ctx.edit.addRecipient('archive@mail.test.example', { notify: ['NEVER'], orcpt: 'rfc822;carol@mail.test.example' });
        await ctx.edit.replaceBody(Buffer.concat([await msg.bodyBuffer(), Buffer.from('-- \r\nchecked\r\n')]));
      },
    });
    const { reply, recipients, text, request } = await runChain(scratch.dir, [{ filter: editor }]);
    assert.equal(reply, '');
    assert.deepEqual(recipients, ['alice@mail.test.example', 'alice@mail.test.example', 'archive@mail.test.example']);
    const added = control.controlDataOf(await control.readControlFiles(request.controlPaths)).recipients.at(-1);
    assert.deepEqual(added, { address: 'archive@mail.test.example', orcpt: 'rfc822;carol@mail.test.example', dsn: 'N' });
    assert.equal(
      text,
      [
        // Courier's own Received: stays first, as the milter MTAs' own field does.
        'Received: from client.example ([::ffff:192.0.2.10])',
        '  by mail.test.example with ESMTP; Sun, 22 Nov 2026 04:40:00 +0000',
        '  id 000000000016A018.000000006B0263EF.000049F2',
        'X-First: one',
        'From: Bob <bob@sender.example>',
        'To: Alice <alice@mail.test.example>',
        'Subject: Grüße',
        'Date: Sun, 22 Nov 2026 04:39:59 +0000',
        'Message-ID: <plain-1@sender.example>',
        'X-Last: last',
        '',
        'Hello Alice,',
        '',
        'this is a plain message.',
        '-- ',
        'Bob',
        '-- ',
        'checked',
        '',
      ].join('\n'),
    );
  });

  it('a refused recipient is removed while others remain; all refused rejects; a temporary refusal holds the message back', async () => {
    const refuseCarol = defineFilter({ name: 'refuse', recipient: (_tx, rcpt) => (rcpt.address.startsWith('carol') ? reject('No such user', { code: '550', xcode: '5.1.1' }) : undefined) });
    const removed = await runChain(scratch.dir, [{ filter: refuseCarol }]);
    assert.equal(removed.reply, '');
    assert.deepEqual(removed.recipients, ['alice@mail.test.example', 'alice@mail.test.example']);
    assert.ok(removed.records.some((r) => r.event === 'recipient-removed' && r.recipient === 'carol@mail.test.example'));

    const refuseAll = defineFilter({ name: 'all', recipient: () => reject('No such user', { code: '550', xcode: '5.1.1' }) });
    const rejected = await runChain(scratch.dir, [{ filter: refuseAll }]);
    assert.equal(rejected.reply, '550 5.1.1 No such user');
    assert.equal(rejected.recipients.length, 3, 'nothing written');

    const busy = defineFilter({ name: 'busy', recipient: (_tx, rcpt) => (rcpt.address.startsWith('carol') ? tempfail('Over quota', { code: '452', xcode: '4.2.2' }) : undefined) });
    const held = await runChain(scratch.dir, [{ filter: busy }]);
    assert.equal(held.reply, '452 4.2.2 Over quota');
    assert.equal(held.recipients.length, 3);
  });

  it('discard drops every recipient; quarantine, which Courier lacks, refuses temporarily', async () => {
    const dropped = await runChain(scratch.dir, [{ filter: defineFilter({ name: 'drop', message: () => discard() }) }]);
    assert.equal(dropped.reply, '200 Ok');
    assert.deepEqual(dropped.recipients, []);
    const held = await runChain(scratch.dir, [{ filter: defineFilter({ name: 'hold', edits: ['quarantine'], message: () => quarantine('odd') }) }]);
    assert.match(held.reply, /^451 4\.3\.0 /);
    assert.ok(held.records.some((r) => r.event === 'quarantine-unsupported'));
  });

  it('the daemon runs filter-definition modules beside doFilter ones, with its for bypass; a failing hook gets the entry\'s onError', async () => {
    const courier = new CourierConfig({ sysconfdir: etcFixture });
    const daemonRun = async (modules: unknown[]) => {
      const { logger, records } = memoryLogger();
      const chain = await loadCourierChain(settingsFromObject({ modules }, modulesDir), courier, logger);
      const request = await message(scratch.dir);
      return { reply: formatReply(await chain.filter(request)), records, text: await readFile(request.dataPath, 'utf8') };
    };
    const stamped = await daemonRun([{ module: './api-stamp.js' }]);
    assert.equal(stamped.reply, '200 Ok\n');
    assert.match(stamped.text, /^X-Api-Stamp: yes$/m);

    const refused = await daemonRun([{ module: './api-stamp.js', options: { rejectSender: 'bob@sender.example' } }]);
    assert.equal(refused.reply, '550 5.7.1 Sender refused by api-stamp\n');

    const broken = await daemonRun([{ module: './api-stamp.js', options: { fail: true }, onError: 'reject' }]);
    assert.match(broken.reply, /^554 5\.7\.1 /);
    assert.doesNotMatch(broken.text, /X-Api-Stamp/, 'nothing written after a failure');
    assert.ok(broken.records.some((r) => r.event === 'filter-error' && r.policy === 'reject' && String(r.err).includes('stamp broke')));

    const badOptions = await daemonRun([{ module: './api-stamp.js', options: { colour: 'blue' } }]);
    assert.match(badOptions.reply, /^451 /);
    assert.ok(badOptions.records.some((r) => r.event === 'module-failed' && String(r.err).includes('options.colour: unknown option')));
  });

  it('the daemon logs one line per message, with what each filter of a filter-definition module did', async () => {
    const courier = new CourierConfig({ sysconfdir: etcFixture });
    const lines = async (options: Record<string, unknown>) => {
      const { logger, records } = memoryLogger();
      const chain = await loadCourierChain(settingsFromObject({ modules: [{ module: './api-stamp.js', options }] }, modulesDir), courier, logger);
      const reply = formatReply(await chain.filter(await message(scratch.dir)));
      return { reply, lines: records.filter((r) => r.event === 'message') };
    };
    const accepted = await lines({});
    assert.equal(accepted.reply, '200 Ok\n');
    assert.equal(accepted.lines.length, 1);
    assert.match(String(accepted.lines[0]!.modules), /^api-stamp=continue\/\d+ms$/);
    assert.match(String(accepted.lines[0]!.filters), /^api-stamp\.sender=continue\/\d+ms api-stamp\.recipient×3=continue\/\d+ms api-stamp\.message=continue\/\d+ms$/);
    // Refused at the sender: the line still says which filter's hook decided.
    const refused = await lines({ rejectSender: 'bob@sender.example' });
    assert.match(refused.reply, /^550 /);
    assert.equal(refused.lines.length, 1);
    assert.match(String(refused.lines[0]!.filters), /^api-stamp\.sender=reject\/\d+ms$/);
  });

  it('the daemon alone runs doFilter modules only: the filter API\'s modules and the built-in names come with its module kind', async () => {
    const courier = new CourierConfig({ sysconfdir: etcFixture });
    const settings = settingsFromObject({ modules: ['./scripted.js', './api-stamp.js', 'whitelist_auth'], onError: 'reject' }, modulesDir);
    const { logger, records } = memoryLogger();
    const daemonOnly = await FilterChain.load(settings, courier, logger);
    const failed = records.filter((r) => r.event === 'module-failed').map((r) => String(r.err));
    assert.equal(failed.length, 2, 'the doFilter module loads');
    assert.match(failed[0]!, /api-stamp\.js: exports no doFilter function$/);
    assert.match(failed[1]!, /whitelist_auth/);
    const request = await message(scratch.dir);
    assert.match(formatReply(await daemonOnly.filter(request)), /^554 /, 'a module that cannot load gets its onError');

    const withKind = await loadCourierChain(settings, courier, memoryLogger().logger);
    assert.equal(formatReply(await withKind.filter(await message(scratch.dir))), '200 Ok\n');
  });

  it('a filter-definition module sees the control files as an earlier module left them', async () => {
    const { logger } = memoryLogger();
    const courier = new CourierConfig({ sysconfdir: etcFixture });
    const modules = [
      { module: './scripted.js', name: 'appender', options: { behaviour: 'append-recipient', address: 'dave@mail.test.example' } },
      { module: './api-stamp.js' },
    ];
    const chain = await loadCourierChain(settingsFromObject({ modules }, modulesDir), courier, logger);
    const request = await message(scratch.dir);
    assert.equal(formatReply(await chain.filter(request)), '200 Ok\n');
    assert.match(await readFile(request.dataPath, 'utf8'), /^X-Api-Recipients: 4$/m);
  });

  it('the daemon leaves a filter-definition module\'s failure policy, deadline and testing to the engine, per hook as on a milter MTA', async () => {
    const courier = new CourierConfig({ sysconfdir: etcFixture });
    const daemonRun = async (modules: unknown[], top: Record<string, unknown> = {}) => {
      const { logger, records } = memoryLogger();
      const chain = await loadCourierChain(settingsFromObject({ ...top, modules }, modulesDir), courier, logger);
      const request = await message(scratch.dir);
      return { reply: formatReply(await chain.filter(request)), records, text: await readFile(request.dataPath, 'utf8') };
    };
    // onError continue drops only the failed hook: the filter's message hook still runs and its edit is written.
    const recipientFails = await daemonRun([{ module: './api-stamp.js', options: { failRecipient: true }, onError: 'continue' }]);
    assert.equal(recipientFails.reply, '200 Ok\n');
    assert.match(recipientFails.text, /^X-Api-Stamp: yes$/m);
    assert.ok(recipientFails.records.some((r) => r.event === 'filter-error' && r.stage === 'recipient' && r.policy === 'continue'));
    assert.ok(!recipientFails.records.some((r) => r.event === 'module-error'), 'the daemon saw no module failure');

    const recipientFailsTempfail = await daemonRun([{ module: './api-stamp.js', options: { failRecipient: true } }]);
    assert.match(recipientFailsTempfail.reply, /^451 4\.3\.0 Mail filter temporarily unavailable/);
    assert.doesNotMatch(recipientFailsTempfail.text, /X-Api-Stamp/);

    // A testing filter's decisions and edits are logged, never applied: nothing is written.
    const testing = await daemonRun([{ module: './api-stamp.js', options: { rejectSender: 'bob@sender.example' }, testing: true }]);
    assert.equal(testing.reply, '200 Ok\n');
    assert.ok(testing.records.some((r) => r.event === 'testing' && String(r.would).startsWith('reject')));
    const testingEdits = await daemonRun([{ module: './api-stamp.js', testing: true }]);
    assert.doesNotMatch(testingEdits.text, /X-Api-Stamp/);

    // The daemon's testing is the engine's shadow: edits are not written either.
    const shadow = await daemonRun([{ module: './api-stamp.js' }], { testing: true });
    assert.equal(shadow.reply, '200 Ok\n');
    assert.doesNotMatch(shadow.text, /X-Api-Stamp/);
  });
});
