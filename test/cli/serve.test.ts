import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { access, mkdtemp, rm } from 'node:fs/promises';
import os, { availableParallelism } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { POSTFIX_V6, connect, header, macro, mail, rcpt, textOf, types } from '../milter/driver.js';
import { Wire } from '../server/wire.js';
import { defaultWorkers } from '../../src/cli/serve-options.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const cli = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

test('milterkit serve runs the example filter, prints where it listens, answers as the example says, stops on SIGTERM', async () => {
  const child = spawn(process.execPath, [cli, 'serve', 'examples/add-header.ts', '--socket', 'inet:0@127.0.0.1', '--log-level', 'warn'], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
  const [line] = (await once(child.stdout, 'data')) as [Buffer];
  const match = /listening on inet:127\.0\.0\.1:(\d+)/.exec(line.toString());
  assert.ok(match, line.toString());
  const cpus = availableParallelism();
  const served = cpus < 2 ? 'in this process' : `with ${Math.min(cpus, 8)} worker processes`;
  assert.match(line.toString(), new RegExp(`${served} \\(default: one per CPU, at most 8; --workers N to choose\\)\n$`));
  const wire = await Wire.open({ port: Number(match[1]), host: '127.0.0.1' });
  const [optneg] = await wire.exchange(1, POSTFIX_V6);
  assert.equal(optneg!.type, 'optneg');
  const message = (subject: string) => [mail(), rcpt(), { type: 'data' } as const, header('Subject', subject), { type: 'eoh' } as const, macro('E', { i: 'QID7' }), { type: 'eob' } as const];
  const first = await wire.exchange(7, macro('C', {}), connect('198.51.100.7'), ...message('hello'));
  assert.deepEqual(types(first), ['continue', 'continue', 'continue', 'continue', 'continue', 'addHeader', 'continue']);
  assert.deepEqual(textOf(first[5]!), { type: 'addHeader', name: 'X-Milterkit', value: 'checked; client=client.example [198.51.100.7]; queue-id=QID7' });
  const second = await wire.exchange(5, { type: 'abort' }, ...message('please REJECTME'));
  assert.deepEqual(second.map(textOf).at(-1), { type: 'replyCode', text: '550 5.7.1 Message refused by the milterkit example filter' });
  wire.socket.destroy();
  child.kill('SIGTERM');
  assert.deepEqual(await once(child, 'exit'), [0, null]);
});

test('milterkit with no or an unknown command prints usage and exits 64 (usage error)', async () => {
  for (const args of [[], ['frobnicate']]) {
    const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const [code] = await once(child, 'exit');
    assert.equal(code, 64);
    assert.match(out, /usage: milterkit <command>/);
  }
});

/** Bad values for `milterkit serve`, each with what the message must name. */
const badOptions: Array<[args: string[], names: RegExp]> = [
  [['--socket-mode', '999'], /--socket-mode/],
  [['--socket-mode', '1777'], /--socket-mode/],
  [['--max-connections', '0'], /--max-connections/],
  [['--idle-timeout', 'soon'], /--idle-timeout/],
  [['--error-verdict', 'progress'], /--error-verdict/],
  [['--log-level', 'loud'], /--log-level/],
  [['--socket', 'tcp:nowhere'], /socket/],
  [['--no-such-option'], /no-such-option/],
];

for (const [args, names] of badOptions) {
  test(`milterkit serve ${args.join(' ')}: stops before listening, exit status 64, no socket file left`, async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'milterkit-serve-'));
    const socketPath = path.join(dir, 'milter.sock');
    const child = spawn(process.execPath, [cli, 'serve', 'examples/add-header.ts', '--socket', `unix:${socketPath}`, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    let stdout = '';
    child.stdout.on('data', (d) => (stdout += d));
    const [code] = await once(child, 'exit');
    assert.equal(code, 64, stderr);
    assert.match(stderr, names);
    assert.doesNotMatch(stdout, /listening/);
    await assert.rejects(access(socketPath), 'no socket file');
    await rm(dir, { recursive: true });
  });
}

test('milterkit serve --workers 0 says it serves in this process, as chosen', async () => {
  const child = spawn(process.execPath, [cli, 'serve', 'examples/add-header.ts', '--socket', 'inet:0@127.0.0.1', '--workers', '0', '--log-level', 'warn'], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
  const [line] = (await once(child.stdout, 'data')) as [Buffer];
  assert.match(line.toString(), /listening on inet:127\.0\.0\.1:\d+ in this process \(--workers\)\n$/);
  child.kill('SIGTERM');
  assert.deepEqual(await once(child, 'exit'), [0, null]);
});

test("serve's default worker count: one per CPU up to 8, none on one CPU", () => {
  assert.deepEqual([1, 2, 4, 8, 64].map((cpus) => defaultWorkers(cpus)), [0, 2, 4, 8, 8]);
});
