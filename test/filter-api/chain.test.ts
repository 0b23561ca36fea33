import { test } from 'node:test';
import assert from 'node:assert/strict';
import { accept, defineFilter, discard, quarantine, reject, tempfail, type AnyFilter } from '../../src/filter-api/index.js';
import { load, memoryLogger, runMessage } from './support.js';

const tagger = (name: string, header = `X-${name}`) =>
  defineFilter({
    name,
    edits: ['headers'],
    message(_tx, message) {
      message.headers.add(header, `seen ${message.headers.count('X-Trace')}`);
      message.headers.add('X-Trace', name);
    },
  });

const recorder = (name: string, seen: string[], decide: Partial<Record<'connect' | 'sender' | 'recipient' | 'message', () => ReturnType<typeof accept>>> = {}): AnyFilter =>
  defineFilter({
    name,
    connect: () => (seen.push(`${name}.connect`), decide.connect?.()),
    sender: () => (seen.push(`${name}.sender`), decide.sender?.()),
    recipient: (_tx, rcpt) => (seen.push(`${name}.recipient:${rcpt.address}`), decide.recipient?.()),
    message: () => (seen.push(`${name}.message`), decide.message?.()),
  });

test('every filter runs at every stage in chain order; each sees the edits of those before it', async () => {
  const seen: string[] = [];
  const chain = await load({ filters: [{ filter: recorder('a', seen) }, { filter: tagger('one') }, { filter: tagger('two') }, { filter: recorder('b', seen) }] });
  const run = await runMessage(chain);
  assert.equal(run.outcome?.action, 'accept');
  assert.deepEqual(seen, ['a.connect', 'b.connect', 'a.sender', 'b.sender', 'a.recipient:bob@example.net', 'b.recipient:bob@example.net', 'a.message', 'b.message']);
  const fields = [...run.outcome!.draft.headers!].slice(3);
  assert.deepEqual(fields, [
    { name: 'X-one', value: 'seen 0' },
    { name: 'X-Trace', value: 'one' },
    { name: 'X-two', value: 'seen 1' },
    { name: 'X-Trace', value: 'two' },
  ]);
});

test('a sender rejection ends the message with the filter reply; later filters do not run', async () => {
  const seen: string[] = [];
  const chain = await load({ filters: [{ filter: recorder('a', seen, { sender: () => reject('Go away', { code: '554', xcode: '5.7.1' }) }) }, { filter: recorder('b', seen) }] });
  const run = await runMessage(chain);
  assert.deepEqual(run.start, { kind: 'final', by: 'a', decision: { kind: 'reject', reply: { code: '554', xcode: '5.7.1', lines: ['Go away'] } } });
  assert.deepEqual(seen, ['a.connect', 'b.connect', 'a.sender']);
});

test('a recipient refusal refuses that recipient only; the message goes on with the others', async () => {
  const seen: string[] = [];
  const refuseBob = defineFilter({
    name: 'refuse-bob',
    recipient: (_tx, rcpt) => (rcpt.address.startsWith('bob@') ? tempfail('Bob is busy', { code: '450', xcode: '4.2.1' }) : undefined),
  });
  let recipientsAtMessage: string[] = [];
  const reader = defineFilter({ name: 'reader', message: (tx) => void (recipientsAtMessage = tx.recipients.map((r) => r.address)) });
  const chain = await load({ filters: [{ filter: refuseBob }, { filter: recorder('after', seen) }, { filter: reader }] });
  const run = await runMessage(chain, { recipients: ['bob@example.net', 'carol@example.net'] });
  assert.equal(run.recipients[0]!.kind, 'refused');
  assert.equal(run.recipients[1]!.kind, 'continue');
  assert.deepEqual(seen.filter((s) => s.includes('recipient')), ['after.recipient:carol@example.net']);
  assert.deepEqual(recipientsAtMessage, ['carol@example.net']);
  assert.equal(run.outcome?.action, 'accept');
});

test('accept stops the deciding filter and the ones after it; the ones before still run', async () => {
  const seen: string[] = [];
  const chain = await load({
    filters: [{ filter: recorder('before', seen) }, { filter: recorder('acceptor', seen, { sender: accept }) }, { filter: recorder('after', seen, { message: () => reject() }) }],
  });
  const run = await runMessage(chain);
  assert.equal(run.outcome?.action, 'accept');
  assert.equal(run.outcome?.by, 'acceptor');
  assert.deepEqual(seen.filter((s) => !s.endsWith('connect')), ['before.sender', 'acceptor.sender', 'before.recipient:bob@example.net', 'before.message']);
});

test('the for bypass skips only the named filters, and only when the filter accepts', async () => {
  const seen: string[] = [];
  const chain = await load({
    filters: [
      { filter: recorder('whitelist', seen, { message: accept }), for: ['spam'] },
      { filter: recorder('virus', seen) },
      { filter: recorder('spam', seen, { message: () => reject('spam') }) },
    ],
  });
  const run = await runMessage(chain);
  assert.equal(run.outcome?.action, 'accept');
  assert.deepEqual(seen.filter((s) => s.endsWith('message')), ['whitelist.message', 'virus.message']);

  const notAccepting = await load({ filters: [{ filter: recorder('whitelist', []), for: ['spam'] }, { filter: recorder('spam', [], { message: () => reject('spam') }) }] });
  assert.equal((await runMessage(notAccepting)).outcome?.action, 'reject');
});

test('trusting filters are skipped for authenticated senders; a trusting chain accepts them outright', async () => {
  const seen: string[] = [];
  const chain = await load({ filters: [{ filter: recorder('rbl', seen, { connect: () => reject('listed') }), trusting: true }, { filter: recorder('other', seen) }] });
  const authed = await runMessage(chain, { auth: { user: 'alice' } });
  assert.equal(authed.outcome?.action, 'accept');
  assert.ok(!seen.some((s) => s.startsWith('rbl')));
  assert.equal((await runMessage(chain)).start.kind, 'final');

  const trustingChain = await load({ trusting: true, filters: [{ filter: recorder('rbl', [], { sender: () => reject('no') }) }] });
  const run = await runMessage(trustingChain, { auth: { user: 'alice' } });
  assert.equal(run.outcome?.action, 'accept');
  assert.equal(run.outcome?.by, 'trusting');
});

test('connect hooks run again after the client authenticated: a trusting filter that refused before AUTH is skipped after it', async () => {
  const seen: string[] = [];
  const chain = await load({ filters: [{ filter: recorder('authenticate-first', seen, { connect: () => reject('Authenticate first') }), trusting: true }, { filter: recorder('other', seen) }] });
  const connection = chain.connection({ address: '192.0.2.1', helo: 'client.example.org' }, { frontEnd: 'milter' });
  assert.equal((await runMessage(chain, {}, connection)).start.kind, 'final');
  assert.equal((await runMessage(chain, {}, connection)).start.kind, 'final');
  assert.equal((await runMessage(chain, { auth: { user: 'alice' } }, connection)).outcome?.action, 'accept');
  assert.equal((await runMessage(chain, { auth: { user: 'alice' } }, connection)).outcome?.action, 'accept');
  // Once before AUTH (the refusal ends the stage), once after it (without the trusting filter).
  assert.deepEqual(seen.filter((s) => s.endsWith('connect')), ['authenticate-first.connect', 'other.connect']);
});

test('a testing filter has its decision and edits logged and dropped', async () => {
  const logger = memoryLogger();
  const rejecting = defineFilter({
    name: 'strict',
    edits: ['headers'],
    message(_tx, message) {
      message.headers.add('X-Strict', 'yes');
      return reject('too strict');
    },
  });
  const chain = await load({ logger, filters: [{ filter: rejecting, testing: true }] });
  const run = await runMessage(chain);
  assert.equal(run.outcome?.action, 'accept');
  assert.equal(run.outcome?.draft.headers?.get('X-Strict'), undefined);
  assert.ok(logger.lines.some((l) => l.message.includes('testing: "strict" would reject')));
});

test('a shadow chain logs what it would do and lets the message through unchanged', async () => {
  const logger = memoryLogger();
  const chain = await load({ logger, shadow: true, filters: [{ filter: tagger('tag') }, { filter: recorder('rbl', [], { recipient: () => reject('no') }) }, { filter: recorder('x', [], { message: () => reject('no') }) }] });
  const run = await runMessage(chain);
  assert.equal(run.recipients[0]!.kind, 'continue');
  assert.equal(run.outcome?.action, 'accept');
  assert.equal(run.outcome?.draft.headers, undefined, 'no header edits');
  assert.ok(logger.lines.some((l) => /shadow: would reject .*no/.test(l.message)));
});

for (const [policy, action] of [['tempfail', 'tempfail'], ['reject', 'reject'], ['continue', 'accept']] as const) {
  test(`a throwing hook gets onError ${policy}; its edits are dropped`, async () => {
    const broken = defineFilter({
      name: 'broken',
      edits: ['headers'],
      message(_tx, message) {
        message.headers.add('X-Broken', 'half-done');
        throw new Error('database gone');
      },
    });
    const chain = await load({ filters: [{ filter: broken, onError: policy }] });
    const run = await runMessage(chain);
    assert.equal(run.outcome?.action, action);
    assert.equal(run.outcome?.draft.headers?.get('X-Broken'), undefined);
    if (action === 'tempfail') assert.deepEqual(run.outcome?.reply?.code, '451');
  });

  test(`a hanging hook gets onTimeout ${policy}, and its signal fires`, async () => {
    let signalled = false;
    const hanging = defineFilter({
      name: 'hanging',
      message: (_tx, _message, ctx) =>
        new Promise<undefined>((resolve) => {
          ctx.signal.addEventListener('abort', () => {
            signalled = true;
            // Answering after the deadline changes nothing.
            resolve(undefined);
          });
        }),
    });
    const chain = await load({ filters: [{ filter: hanging, timeoutMs: 20, onTimeout: policy }] });
    const run = await runMessage(chain);
    assert.equal(run.outcome?.action, action);
    assert.ok(signalled);
  });
}

test('an answer that is not a decision, and an undeclared edit, count as filter errors', async () => {
  const nonsense = defineFilter({ name: 'nonsense', sender: () => 'reject' as never });
  assert.equal((await runMessage(await load({ filters: [{ filter: nonsense, onError: 'reject' }] }))).start.kind, 'final');
  const undeclared = defineFilter({ name: 'undeclared', message: (_tx, _m, ctx) => ctx.edit.addRecipient('x@example.org') });
  const logger = memoryLogger();
  const run = await runMessage(await load({ logger, filters: [{ filter: undeclared }] }));
  assert.equal(run.outcome?.action, 'tempfail');
  assert.ok(logger.lines.some((l) => l.message.includes('did not declare "recipients"')));
});

test('aborting the message fires the running hook signal', async () => {
  const chain = await load({
    filters: [{ filter: defineFilter({ name: 'slow', sender: (_tx, ctx) => new Promise((resolve) => ctx.signal.addEventListener('abort', () => resolve(reject('late')))) }) }],
  });
  const message = chain.connection({}, { frontEnd: 'milter' }).message({ sender: { address: 'a@example.org', args: [] } });
  const started = message.start();
  message.abort();
  assert.deepEqual(await started, { kind: 'continue' });
});

test('connect hooks run once per connection; their decision holds for every message', async () => {
  const seen: string[] = [];
  const chain = await load({ filters: [{ filter: recorder('rbl', seen, { connect: () => reject('listed') }) }] });
  const connection = chain.connection({ address: '192.0.2.9' }, { frontEnd: 'milter' });
  assert.equal((await runMessage(chain, {}, connection)).start.kind, 'final');
  assert.equal((await runMessage(chain, {}, connection)).start.kind, 'final');
  assert.deepEqual(seen, ['rbl.connect']);
});

test('discard and quarantine end the chain; quarantine keeps the edits', async () => {
  const dropped = await runMessage(await load({ filters: [{ filter: recorder('d', [], { recipient: discard }) }] }));
  assert.equal(dropped.recipients[0]!.kind, 'final');
  const seen: string[] = [];
  const holder = defineFilter({ name: 'q', edits: ['quarantine'], message: () => quarantine('suspicious') });
  const held = await runMessage(await load({ filters: [{ filter: tagger('tag') }, { filter: holder }, { filter: recorder('later', seen) }] }));
  assert.equal(held.outcome?.action, 'accept');
  assert.equal(held.outcome?.quarantine, 'suspicious');
  assert.equal(held.outcome?.draft.headers?.get('X-tag'), 'seen 0');
  assert.ok(!seen.includes('later.message'));
  // Quarantine is an edit a filter declares (the milter front-end negotiates it only then).
  const undeclared = await runMessage(await load({ filters: [{ filter: recorder('q', [], { message: () => quarantine('x') }) }] }));
  assert.equal(undeclared.outcome?.action, 'tempfail');
});

test('recipient and sender edits are kept in the draft with DSN parameters', async () => {
  const rewrite = defineFilter({
    name: 'rewrite',
    edits: ['recipients', 'sender'],
    sender: (_tx, ctx) => ctx.edit.changeSender('bounces@example.org'),
    message(_tx, _m, ctx) {
      ctx.edit.addRecipient('<archive@example.org>', { notify: ['NEVER'], orcpt: 'rfc822;bob@example.net' });
      assert.equal(ctx.edit.removeRecipient('BOB@EXAMPLE.NET'), false, 'local parts are exact');
      assert.equal(ctx.edit.removeRecipient('bob@EXAMPLE.net'), true);
    },
  });
  const run = await runMessage(await load({ filters: [{ filter: rewrite }] }));
  const draft = run.outcome!.draft;
  assert.deepEqual(draft.sender, { address: 'bounces@example.org', args: [] });
  assert.deepEqual(draft.recipients, [{ address: 'archive@example.org', args: ['NOTIFY=NEVER', 'ORCPT=rfc822;bob@example.net'], received: false }]);
});

test('chain settings are checked: duplicate names, unknown or earlier for targets, options against the schema', async () => {
  const withOptions = defineFilter({
    name: 'opt',
    options: { type: 'object', properties: { pattern: { type: 'string', default: 'x' }, limit: { type: 'integer', minimum: 1 } } },
    message: () => undefined,
  });
  await assert.rejects(load({ filters: [{ filter: withOptions }, { filter: withOptions }] }), /the name "opt" is used twice/);
  await assert.rejects(load({ filters: [{ filter: withOptions, for: ['nope'] }] }), /no filter of that name/);
  await assert.rejects(load({ filters: [{ filter: withOptions, name: 'a' }, { filter: withOptions, name: 'b', for: ['a'] }] }), /only bypass filters after it/);
  await assert.rejects(load({ filters: [{ filter: withOptions, options: { patern: 'y' } }] }), (error: Error & { path: unknown[]; entry: number }) => {
    assert.match(error.message, /options\.patern: unknown option/);
    assert.deepEqual(error.path, ['options', 'patern']);
    assert.equal(error.entry, 0);
    return true;
  });
  await assert.rejects(load({ filters: [{ filter: withOptions, options: { limit: 0 } }] }), /options\.limit: must be >= 1/);
  const chain = await load({ filters: [{ filter: withOptions, options: { limit: 3 } }] });
  assert.deepEqual(chain.entries[0]!.options, { pattern: 'x', limit: 3 });
  await assert.rejects(load({ filters: [{ filter: defineFilter({ name: 'bad-init', init: () => Promise.reject(new Error('no redis')), message: () => undefined }) }] }), /failed to start: no redis/);
});

test('the chain needs only the stages, edits and facts its filters use', async () => {
  const chain = await load({ filters: [{ filter: tagger('t') }, { filter: defineFilter({ name: 'r', needs: ['queueId'], macros: { eom: ['{rcpt_count}'] }, recipient: () => undefined }), trusting: true }] });
  assert.deepEqual([...chain.needs.stages].sort(), ['message', 'recipient']);
  assert.deepEqual([...chain.needs.edits], ['headers']);
  assert.deepEqual([...chain.needs.facets].sort(), ['auth', 'queueId']);
  assert.deepEqual(chain.needs.macros, { eom: ['{rcpt_count}'] });
});

test('the message line names a hook that ended alike for several recipients in a row once, with its count', async () => {
  const logger = memoryLogger();
  const refuseCarol = defineFilter({ name: 'rcpt', recipient: (_tx, rcpt) => (rcpt.address.startsWith('carol') ? reject('no carol') : undefined) });
  const chain = await load({ filters: [{ filter: refuseCarol }], logger });
  await runMessage(chain, { recipients: ['a@example.net', 'b@example.net', 'carol@example.net', 'd@example.net'] });
  const line = logger.lines.find((l) => (l.fields as { event?: string }).event === 'message');
  assert.match(String((line?.fields as { filters?: string }).filters), /^rcpt\.recipient×2=continue\/\d+ms rcpt\.recipient=reject\/\d+ms rcpt\.recipient=continue\/\d+ms$/);
});
