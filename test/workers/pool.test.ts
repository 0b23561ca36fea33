import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Milter, MilterServer } from '../../src/index.js';
import { WorkerPool } from '../../src/workers/pool.js';
import { spin } from './fixtures/busy.js';
import { POSTFIX_V6, mail } from '../milter/driver.js';
import { Wire } from '../server/wire.js';

/**
 * Connection A runs CPU-heavy work at end of message; connection B sends MAIL meanwhile.
 * Returns the order in which the two replies arrived.
 */
async function race(heavy: () => Promise<unknown> | unknown): Promise<string[]> {
  class Heavy extends Milter {
    override envfrom() {}
    override async eom() {
      await heavy();
    }
  }
  const server = new MilterServer({ filter: Heavy, socket: 'inet:0@127.0.0.1' });
  await server.listen();
  const target = { port: server.port!, host: '127.0.0.1' };
  const [a, b] = await Promise.all([Wire.open(target), Wire.open(target)]);
  await Promise.all([a.exchange(2, POSTFIX_V6, mail()), b.exchange(1, POSTFIX_V6)]);
  const order: string[] = [];
  const slow = a.exchange(1, { type: 'eob' }).then(() => order.push('A eom'));
  await new Promise((r) => setTimeout(r, 30));
  const quick = b.exchange(1, mail()).then(() => order.push('B mail'));
  await Promise.all([slow, quick]);
  a.socket.destroy();
  b.socket.destroy();
  await server.close();
  return order;
}

test('CPU-heavy work on the event loop stalls other connections', async () => {
  assert.deepEqual(await race(() => spin(400)), ['A eom', 'B mail']);
});

test('the same work in a WorkerPool leaves other connections served', async () => {
  const pool = new WorkerPool(new URL('./fixtures/busy.js', import.meta.url), { threads: 1 });
  try {
    assert.deepEqual(await race(() => pool.run('spin', 400)), ['B mail', 'A eom']);
  } finally {
    await pool.close();
  }
});

test('a full pool queue rejects, so the callback fails with the error verdict instead of queueing without bound', async () => {
  const pool = new WorkerPool(new URL('./fixtures/busy.js', import.meta.url), { threads: 1, maxQueue: 1 });
  try {
    const runs = [pool.run('spin', 100), pool.run('spin', 100), pool.run('spin', 100)];
    const results = await Promise.allSettled(runs);
    assert.ok(results.some((r) => r.status === 'rejected'), 'at least one task refused');
    assert.ok(results.some((r) => r.status === 'fulfilled'));
  } finally {
    await pool.close();
  }
});
