import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeEach, describe, it } from 'node:test';
import { loadCourierChain } from '../../src/cli/courier-settings.js';
import { FilterChain } from '../../src/courier/chain.js';
import { CourierConfig } from '../../src/courier/helpers/config.js';
import { formatReply } from '../../src/courier/reply.js';
import { parseSettings, settingsFromObject } from '../../src/courier/settings.js';
import { calls, held } from './modules/scripted.js';
import { copySpool, etcFixture, memoryLogger, repoRoot, scratch, spoolFixtures } from './support.js';

// Lets the memory test collect garbage before it measures.
setFlagsFromString('--expose-gc');

const modulesDir = fileURLToPath(new URL('./modules/', import.meta.url));
const courier = new CourierConfig({ sysconfdir: etcFixture });
const plain = { dataPath: join(spoolFixtures, 'D-plain'), controlPaths: [join(spoolFixtures, 'C-ipv4-mapped')] };
const authenticated = { dataPath: join(spoolFixtures, 'D-auth'), controlPaths: [join(spoolFixtures, 'C-ipv6-auth')] };

function step(name: string, options: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) {
  return { module: './scripted.js', name, options, ...extra };
}

async function run(config: Record<string, unknown>, request = plain) {
  const { logger, records } = memoryLogger();
  const chain = await FilterChain.load(settingsFromObject(config, modulesDir), courier, logger);
  const reply = formatReply(await chain.filter(request));
  return { reply, records, chain };
}

describe('module chain', () => {
  beforeEach(() => {
    calls.length = 0;
  });

  it('accepts with 200 Ok when no module decides', async () => {
    const { reply, records } = await run({ modules: [step('a'), step('b')] });
    assert.equal(reply, '200 Ok\n');
    assert.deepEqual(calls, ['a', 'b']);
    const summary = records.find((r) => r.event === 'message');
    assert.equal(summary?.messageId, '000000000016A018.000000006B0263EF.000049F2');
    assert.equal(summary?.reply, '200 Ok');
  });

  it('stops at the first reject and passes multi-line replies through', async () => {
    const { reply, records } = await run({ modules: [step('a'), step('b', { reply: '550-5.7.1 first\n550 5.7.1 second' }), step('c')] });
    assert.equal(reply, '550-5.7.1 first\n550 5.7.1 second\n');
    assert.deepEqual(calls, ['a', 'b']);
    const summary = records.find((r) => r.event === 'message');
    assert.equal(summary?.decidedBy, 'b');
    assert.equal(summary?.recipients, 'alice@mail.test.example, carol@mail.test.example');
    assert.equal(summary?.rcpts, 2);
    assert.match(String(summary?.modules), /^a=continue\/\d+ms b=550\/\d+ms$/);
    assert.equal(summary?.msg, 'rejected by b');
  });

  it('stops at a 2xx accept and at a 0xx accept-and-skip', async () => {
    assert.equal((await run({ modules: [step('a', { reply: '250 fine' }), step('b')] })).reply, '250 fine\n');
    assert.deepEqual(calls, ['a']);
    calls.length = 0;
    assert.equal((await run({ modules: [step('a', { reply: '050 skip the rest' }), step('b')] })).reply, '050 skip the rest\n');
    assert.deepEqual(calls, ['a']);
  });

  it('implements "module for a b": an accept bypasses the named modules only', async () => {
    const config = { modules: ['./scripted.js', step('whitelist', { reply: '200 trusted' }, { for: ['greylist'] }), step('greylist', { reply: '451 greylisted' }), step('last')] };
    config.modules[0] = step('first');
    const { reply } = await run(config);
    assert.equal(reply, '200 Ok\n');
    assert.deepEqual(calls, ['first', 'whitelist', 'last']);
  });

  it('applies the failure outcome of a module that throws: tempfail by default, or continue, or reject', async () => {
    assert.equal((await run({ modules: [step('bad', { behaviour: 'throw' }), step('after')] })).reply, '451 4.3.0 Mail filter temporarily unavailable, please try again later\n');
    assert.deepEqual(calls, ['bad']);
    calls.length = 0;
    assert.equal((await run({ modules: [step('bad', { behaviour: 'throw' }, { onError: 'continue' }), step('after')] })).reply, '200 Ok\n');
    assert.deepEqual(calls, ['bad', 'after']);
    const rejected = await run({ onError: 'reject', modules: [step('bad', { behaviour: 'throw' })] });
    assert.equal(rejected.reply, '554 5.7.1 Message refused by mail filter\n');
    const logged = rejected.records.find((r) => r.event === 'module-error');
    assert.equal(logged?.module, 'bad');
    assert.equal((logged?.err as Error | undefined)?.message, 'module failed on purpose');
  });

  it('treats a non-string or code-less answer as a module error', async () => {
    assert.equal((await run({ modules: [step('n', { behaviour: 'number' })] })).reply.slice(0, 4), '451 ');
    assert.equal((await run({ modules: [step('t', { reply: 'hello not a code' }, { onError: 'reject' })] })).reply.slice(0, 4), '554 ');
  });

  it('gives up on a module at its deadline and applies onTimeout', async () => {
    const tempfailed = await run({ modules: [step('slow', { behaviour: 'hang' }, { timeout: 0.05 }), step('after')] });
    assert.equal(tempfailed.reply.slice(0, 4), '451 ');
    assert.deepEqual(calls, ['slow']);
    assert.ok(tempfailed.records.some((r) => r.event === 'module-timeout' && r.module === 'slow'));
    calls.length = 0;
    const continued = await run({ modules: [step('slow', { behaviour: 'hang' }, { timeout: 0.05, onTimeout: 'continue' }), step('after', { reply: '250 after' })] });
    assert.equal(continued.reply, '250 after\n');
  });

  it('never accepts the answer of a module that blocked the thread past its deadline', async () => {
    const { reply, records } = await run({ modules: [step('blocking', { behaviour: 'block', ms: 300, reply: '250 too late' }, { timeout: 0.05, onTimeout: 'reject' })] });
    assert.equal(reply.slice(0, 4), '554 ');
    assert.ok(records.some((r) => r.event === 'module-timeout' && r.module === 'blocking'));
  });

  it('refuses control-file writes from a module after its deadline, and leaves the file as it was', async () => {
    const { dir, remove } = await scratch();
    try {
      const [controlPath] = await copySpool(dir, 'C-ipv4-mapped');
      const before = await readFile(controlPath!, 'utf8');
      const { reply, records } = await run({ modules: [step('late', { behaviour: 'late-write' }, { timeout: 0.05 })] }, { ...plain, controlPaths: [controlPath!] });
      assert.equal(reply.slice(0, 4), '451 ');
      while (!records.some((r) => String(r.event).startsWith('late-write-'))) await new Promise((r) => setTimeout(r, 10));
      assert.equal(records.find((r) => String(r.event).startsWith('late-write-'))?.event, 'late-write-refused');
      assert.equal(await readFile(controlPath!, 'utf8'), before);
    } finally {
      await remove();
    }
  });

  it('releases the message a timed-out module holds on to', async () => {
    const { dir, remove } = await scratch();
    try {
      const dataPath = join(dir, 'D-large');
      await writeFile(dataPath, `Subject: large\n\n${'x'.repeat(1023)}\n`.repeat(1024));
      const collect = runInNewContext('gc') as () => void;
      collect();
      const baseline = process.memoryUsage().arrayBuffers;
      const { logger } = memoryLogger();
      const chain = await FilterChain.load(settingsFromObject({ modules: [step('holder', { behaviour: 'hold-message' }, { timeout: 0.02 })] }, modulesDir), courier, logger);
      for (let i = 0; i < 200; i++) await chain.filter({ ...plain, dataPath });
      collect();
      // Each held message is 1 MiB (a module that times out before it opens one holds nothing).
      assert.ok(held.length >= 32, `only ${held.length} messages were opened in time`);
      const growth = process.memoryUsage().arrayBuffers - baseline;
      assert.ok(growth < (held.length * 1024 * 1024) / 4, `${held.length} held messages, array buffers grew by ${growth} bytes`);
    } finally {
      held.length = 0;
      await remove();
    }
  });

  it('bounds the whole message by messageTimeout', async () => {
    const { reply } = await run({ messageTimeout: 0.05, modules: [step('slow', { behaviour: 'hang' }, { timeout: 60 })] });
    assert.equal(reply.slice(0, 4), '451 ');
  });

  it('keeps running when a module fails to load or initialise, applying its onError each message', async () => {
    const { reply, records, chain } = await run({ modules: [{ module: './missing-module.js' }, step('after')] });
    assert.equal(reply.slice(0, 4), '451 ');
    assert.ok(records.some((r) => r.event === 'module-failed' && r.module === 'missing-module'));
    assert.deepEqual(chain.moduleNames, ['missing-module', 'after']);
    calls.length = 0;
    const skipped = await run({ modules: [step('broken', { failInit: true }, { onError: 'continue' }), step('after', { reply: '250 ran' })] });
    assert.equal(skipped.reply, '250 ran\n');
    assert.deepEqual(calls, ['after']);
  });

  it('testing: logs what a module would have answered but does not apply it', async () => {
    const { reply, records } = await run({ modules: [step('strict', { reply: '550 no' }, { testing: true }), step('after')] });
    assert.equal(reply, '200 Ok\n');
    assert.deepEqual(calls, ['strict', 'after']);
    assert.equal(records.find((r) => r.event === 'testing')?.wouldReply, '550 no');
    calls.length = 0;
    assert.equal((await run({ testing: true, modules: [step('strict', { reply: '550 no' })] })).reply, '200 Ok\n');
  });

  it('trusting: skips a module (or everything) for authenticated senders only', async () => {
    const config = { modules: [step('spamcheck', { reply: '550 spam' }, { trusting: true })] };
    assert.equal((await run(config, authenticated)).reply, '200 Ok\n');
    assert.deepEqual(calls, []);
    assert.equal((await run(config, plain)).reply, '550 spam\n');
    calls.length = 0;
    assert.equal((await run({ trusting: true, modules: [step('x', { reply: '550 no' })] }, authenticated)).reply, '200 Ok\n');
    assert.deepEqual(calls, []);
  });

  it('tempfails a message whose control file cannot be read', async () => {
    const { reply, records } = await run({ modules: [step('a')] }, { dataPath: '/nonexistent/D1', controlPaths: ['/nonexistent/C1'] });
    assert.equal(reply.slice(0, 4), '451 ');
    assert.deepEqual(calls, []);
    assert.ok(records.some((r) => r.level === 'error'));
  });

  it('loads the shipped example configuration with every module ready', async () => {
    const text = await readFile(join(repoRoot, 'examples/courier/milterkit.yaml'), 'utf8');
    const { logger, records } = memoryLogger();
    const chain = await loadCourierChain(parseSettings(text, fileURLToPath(new URL('../../examples/courier/', import.meta.url))), courier, logger);
    assert.deepEqual(chain.moduleNames, ['whitelist_auth', 'attachments', 'deliveredto', 'noduplicates', 'recipient-policy', 'add_header']);
    assert.equal(records.filter((r) => r.event === 'module-ready').length, 6);
  });

  it('uses configured replies', async () => {
    const { reply } = await run({ replies: { accept: '250 2.0.0 Fine' }, modules: [] });
    assert.equal(reply, '250 2.0.0 Fine\n');
  });
});
