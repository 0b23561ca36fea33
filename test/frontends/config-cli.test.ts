import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connectMilter } from '../../src/client/socket.js';
import { runTransaction } from '../../src/mta/index.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const cli = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const fixtures = fileURLToPath(new URL('../filter-api/fixtures/', import.meta.url));

function milterkit(args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [cli, ...args], { cwd: root, encoding: 'utf8' }, (error, stdout, stderr) => {
      resolve({ status: error === null ? 0 : typeof error.code === 'number' ? error.code : -1, stdout, stderr });
    });
  });
}

async function configFile(text: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'milterkit-cli-config-'));
  const file = join(dir, 'chain.yaml');
  await writeFile(file, text);
  return file;
}

const stampChain = (value: string) => `filterPath: [${JSON.stringify(fixtures)}]\nchain:\n  - filter: stamp\n    options: { value: ${value} }\n`;

test('check-config prints the effective chain with option defaults and what the milter negotiates', async () => {
  const file = await configFile(`filterPath: [${JSON.stringify(fixtures)}]\nlisten: inet:8890@127.0.0.1\ndefaults: { onError: reject }\nchain:\n  - stamp\n`);
  const run = await milterkit(['check-config', file]);
  assert.equal(run.status, 0, run.stderr);
  assert.match(run.stdout, /: ok$/m);
  assert.match(run.stdout, /^ {2}1\. stamp \(.*stamp\.js\)$/m);
  assert.match(run.stdout, /^ {5}timeout 30 s, onError reject, onTimeout tempfail$/m);
  assert.match(run.stdout, /^ {5}options: \{"value":"stamped"\}$/m);
  assert.match(run.stdout, /^milter: actions addHeader, insertHeader, changeHeader, deleteHeader; no reply for header, body$/m);
});

test('check-config reports a bad file with its line and exits 1', async () => {
  const file = await configFile('chain:\n  - filter: stamp\n    options: { value: 1 }\n    colour: blue\n');
  const run = await milterkit(['check-config', file]);
  assert.equal(run.status, 1);
  assert.equal(run.stderr, `${file}:4:5: chain.0: unknown key "colour"\n`);
});

test('milterkit test runs the chain of a configuration file', async () => {
  const file = await configFile(stampChain('offline'));
  const run = await milterkit(['test', file, 'test/fixtures/messages/newsletter.eml', '--profile', 'sendmail']);
  assert.equal(run.status, 0, run.stderr);
  assert.match(run.stdout, /^X-Stamp: offline$/m);
});

test('serve --config: SIGHUP with a bad file keeps the running chain; with a good one, new connections get the new chain', async () => {
  const file = await configFile(stampChain('first'));
  const child = spawn(process.execPath, [cli, 'serve', '--config', file, '--socket', 'inet:0@127.0.0.1'], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
  let output = '';
  let unread = 0;
  child.stdout.setEncoding('utf8');
  // Waits until `count` lines after the previous wait match, and returns them.
  const seen = (pattern: RegExp, count = 1): Promise<string[]> =>
    new Promise((resolve) => {
      const check = (): void => {
        const end = output.lastIndexOf('\n') + 1;
        const lines = output.slice(unread, end).split('\n').filter((line) => pattern.test(line));
        if (lines.length < count) return;
        child.stdout.off('data', onData);
        unread = end;
        resolve(lines);
      };
      const onData = (chunk: string): void => {
        output += chunk;
        check();
      };
      child.stdout.on('data', onData);
      check();
    });
  const [started] = await seen(/listening on inet:127\.0\.0\.1:\d+/);
  const port = Number(/listening on inet:127\.0\.0\.1:(\d+)/.exec(started)![1]);
  // Every process that runs the chain reloads it and says so: the worker processes and the
  // primary that forwards the signal. A connection may reach any worker, so wait for all.
  const workers = Number(/with (\d+) worker processes/.exec(started)?.[1] ?? 0);
  const reloading = workers === 0 ? 1 : workers + 1;
  const stamp = async (): Promise<string | undefined> => {
    const report = await runTransaction(await connectMilter(`inet:${port}@127.0.0.1`), 'From: a@example.org\r\nSubject: x\r\n\r\nbody\r\n', { from: '<a@example.org>', recipients: ['<b@example.net>'] });
    return report.header('X-Stamp');
  };
  try {
    assert.equal(await stamp(), 'first');
    await writeFile(file, stampChain('second') + 'shadwo: true\n');
    child.kill('SIGHUP');
    const failed = await seen(/"event":"config-reload-failed"/, reloading);
    for (const line of failed) assert.match(line, /chain\.yaml:5:1: unknown key \\"shadwo\\"/);
    assert.equal(await stamp(), 'first');
    await writeFile(file, stampChain('second'));
    child.kill('SIGHUP');
    await seen(/"event":"config-reloaded"/, reloading);
    assert.equal(await stamp(), 'second');
  } finally {
    child.kill('SIGTERM');
  }
  assert.deepEqual(await once(child, 'exit'), [0, null]);
});
