import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { POSTFIX_V6, mail } from '../milter/driver.js';
import { Wire } from './wire.js';

const script = fileURLToPath(new URL('./fixtures/cluster-server.js', import.meta.url));

async function startCluster(socket: string, workers: number) {
  const child = spawn(process.execPath, [script, socket, String(workers)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [line] = (await once(child.stdout, 'data')) as [Buffer];
  return { child, info: JSON.parse(line.toString()) as { where: string; port: number; pids: number[] } };
}

/** One message through a fresh connection; returns the PID that tagged it. */
async function servedBy(target: { path: string } | { port: number; host: string }): Promise<number> {
  const wire = await Wire.open(target);
  const replies = await wire.exchange(4, POSTFIX_V6, mail(), { type: 'eob' });
  wire.socket.destroy();
  const tag = replies.find((r) => r.type === 'addHeader');
  assert.ok(tag && tag.type === 'addHeader');
  return Number(tag.value.toString());
}

test('workers: N processes share one TCP socket; connections are spread over them', async () => {
  const { child, info } = await startCluster('inet:0@127.0.0.1', 2);
  assert.equal(info.pids.length, 2);
  const pids = new Set<number>();
  for (let i = 0; i < 6; i++) pids.add(await servedBy({ port: info.port, host: '127.0.0.1' }));
  assert.deepEqual([...pids].sort(), [...info.pids].sort());
  assert.ok(!pids.has(child.pid!), 'the primary runs no filter code');
  child.kill('SIGTERM');
  assert.deepEqual(await once(child, 'exit'), [0, null]);
});

test('workers on a unix socket: the primary owns the socket file and removes it at close; a killed worker is replaced', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'milterkit-cluster-'));
  const socketPath = path.join(dir, 'milter.sock');
  const { child, info } = await startCluster(`unix:${socketPath}`, 2);
  assert.equal((await fs.stat(socketPath)).mode & 0o777, 0o660);
  const first = await servedBy({ path: socketPath });
  process.kill(first, 'SIGKILL');
  // The socket keeps working while the worker is replaced.
  const seen = new Set<number>();
  for (let i = 0; i < 20 && seen.size < 2; i++) {
    const pid = await servedBy({ path: socketPath });
    if (pid !== first) seen.add(pid);
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(seen.size, 2, 'two live workers again, neither of them the killed one');
  assert.ok(info.pids.includes(first));
  child.kill('SIGTERM');
  await once(child, 'exit');
  await assert.rejects(fs.access(socketPath));
  await fs.rm(dir, { recursive: true });
});
