/**
 * The hook contract where the chain shares machinery between hooks (one deadline timer per chain,
 * signals made on first read): every hook still gets its own deadline, its signal fires at the
 * deadline, on abort and on disconnect, and an idle chain keeps no process alive.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { defineFilter, reject, type HookResult } from '../../src/filter-api/index.js';
import { load, runMessage } from './support.js';

const sender = { sender: { address: 'alice@example.org', args: [] } };

/** Answers when its signal fires, with the signal's reason. */
const waitForSignal = (signal: AbortSignal): Promise<HookResult> =>
  new Promise((resolve) => signal.addEventListener('abort', () => resolve(reject(String((signal.reason as Error).message))), { once: true }));

test('closing the connection fires the running hook signal', async () => {
  let reason = '';
  const chain = await load({
    filters: [{ filter: defineFilter({ name: 'slow', sender: (_tx, ctx) => waitForSignal(ctx.signal).finally(() => (reason = (ctx.signal.reason as Error).message)) }) }],
  });
  const connection = chain.connection({}, { frontEnd: 'milter' });
  const started = connection.message(sender).start();
  connection.close();
  assert.deepEqual(await started, { kind: 'continue' });
  assert.equal(reason, 'the connection ended');
  assert.equal(connection.signal.aborted, true);
});

test('a hook that never reads its signal still gets onTimeout, and a late read finds it fired', async () => {
  let late: AbortSignal | undefined;
  const silent = defineFilter({
    name: 'silent',
    sender: (_tx, ctx) => new Promise<undefined>((resolve) => setTimeout(() => resolve((late = ctx.signal) && undefined), 60)),
  });
  const run = await runMessage(await load({ filters: [{ filter: silent, timeoutMs: 10, onTimeout: 'reject' }] }));
  assert.equal(run.start.kind, 'final');
  await new Promise((resolve) => setTimeout(resolve, 80));
  assert.equal(late?.aborted, true);
  assert.equal((late?.reason as Error).name, 'HookDeadlineError');
});

test('a short deadline fires on time while a hook with a long one runs', async () => {
  // "patient" hangs (until its signal) for the sender "slow@"; "hasty" always hangs.
  const patient = defineFilter({ name: 'patient', sender: (tx, ctx) => (tx.sender?.address === 'slow@example.org' ? waitForSignal(ctx.signal) : undefined) });
  const hasty = defineFilter({ name: 'hasty', sender: (_tx, ctx) => waitForSignal(ctx.signal) });
  const chain = await load({ filters: [{ filter: patient, timeoutMs: 60_000 }, { filter: hasty, timeoutMs: 20, onTimeout: 'reject' }] });
  const slowConnection = chain.connection({}, { frontEnd: 'milter' });
  let slowDone = false;
  const slow = slowConnection.message({ sender: { address: 'slow@example.org', args: [] } }).start().finally(() => (slowDone = true));
  const quick = await chain.connection({}, { frontEnd: 'milter' }).message(sender).start();
  assert.equal(quick.kind, 'final');
  assert.equal(quick.kind === 'final' && quick.by, 'hasty');
  // The long deadline did not fire with the short one.
  assert.equal(slowDone, false);
  slowConnection.close();
  assert.deepEqual(await slow, { kind: 'continue' });
});

test('a chain whose hooks have ended keeps no process alive', () => {
  const index = fileURLToPath(new URL('../../src/filter-api/index.js', import.meta.url));
  const script = `
    const { Chain, defineFilter } = await import(${JSON.stringify(index)});
    const chain = await Chain.load({ filters: [{ filter: defineFilter({ name: 'quick', sender: async () => undefined }) }] });
    await chain.connection({}, { frontEnd: 'milter' }).message({ sender: { address: 'a@example.org', args: [] } }).start();
    console.log('done');`;
  // The default deadline is 30 s: a timer left holding the process would keep it far past this limit.
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 15_000 });
  assert.equal(child.signal, null, 'the process did not exit by itself');
  assert.equal(child.status, 0, child.stderr);
  assert.equal(child.stdout.trim(), 'done');
});
