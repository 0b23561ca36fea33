import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../../', import.meta.url));

function milterkit(args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['dist/src/cli/main.js', ...args], { cwd: root, encoding: 'utf8' }, (error, stdout, stderr) => {
      resolve({ status: error === null ? 0 : typeof error.code === 'number' ? error.code : -1, stdout, stderr });
    });
  });
}

test('milterkit test runs a filter definition module as a one-filter chain', async () => {
  const run = await milterkit(['test', 'examples/filters/external-tag.ts', 'test/fixtures/messages/newsletter.eml', '--from', '<news@example.com>', '--rcpt', '<bob@example.net>']);
  assert.equal(run.status, 0, run.stderr);
  assert.match(run.stdout, /^ {2}change header Subject #1 to "\[EXTERNAL\] /m);
  assert.match(run.stdout, /^Subject: \[EXTERNAL\] /m);
  assert.match(run.stdout, /^ {2}actions: +ADDHDRS, CHGHDRS/m);
});

test('milterkit test --profile courier runs the filter on the files Courier writes, with its reply semantics', async () => {
  const run = await milterkit([
    'test',
    'examples/filters/external-tag.ts',
    'test/fixtures/messages/newsletter.eml',
    '--profile',
    'courier',
    '--from',
    '<news@example.com>',
    '--rcpt',
    '<bob@example.net>',
  ]);
  assert.equal(run.status, 0, run.stderr);
  assert.match(run.stdout, /^profile: courier /m);
  assert.match(run.stdout, /^smtp reply: 250 Ok\. \S+$/m);
  assert.match(run.stdout, /^--- message as courier would deliver it ---\nReceived: from localhost \(\[::ffff:127\.0\.0\.1\]\)$/m);
  assert.match(run.stdout, /^Subject: \[EXTERNAL\] /m);
  const milter = await milterkit(['test', 'test/testing/filters/policy.ts', 'test/fixtures/messages/newsletter.eml', '--profile', 'courier']);
  assert.equal(milter.status, 1);
  assert.match(milter.stderr, /the courier profile runs filters of milterkit\/filters/);
});

test('milterkit test --auth runs the message as from an authenticated client on every profile: a trusting filter is skipped', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'milterkit-cli-auth-'));
  const config = join(dir, 'chain.yaml');
  const fixtures = fileURLToPath(new URL('../filter-api/fixtures/', import.meta.url));
  await writeFile(config, `filterPath: [${JSON.stringify(fixtures)}]\nchain:\n  - filter: stamp\n    trusting: true\n    options: { value: anonymous }\n`);
  const message = ['test', config, 'test/fixtures/messages/newsletter.eml', '--from', '<alice@example.org>', '--rcpt', '<bob@example.net>'];
  for (const profile of ['postfix', 'sendmail', 'courier']) {
    const anonymous = await milterkit([...message, '--profile', profile]);
    assert.equal(anonymous.status, 0, anonymous.stderr);
    assert.match(anonymous.stdout, /^X-Stamp: anonymous$/m, profile);
    const authenticated = await milterkit([...message, '--profile', profile, '--auth', 'alice@example.org']);
    assert.equal(authenticated.status, 0, authenticated.stderr);
    assert.doesNotMatch(authenticated.stdout, /^X-Stamp:/m, profile);
    if (profile !== 'courier') assert.match(authenticated.stdout, /\{auth_authen\}=alice@example\.org/, profile);
  }
  const bad = await milterkit([...message, '--auth', 'alice:']);
  assert.equal(bad.status, 64);
  assert.match(bad.stderr, /--auth needs user or user:MECHANISM/);
});
