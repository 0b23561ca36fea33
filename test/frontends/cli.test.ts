import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
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
  assert.match(run.stdout, /^ {2}actions: +ADDHDRS, CHGHDRS, QUARANTINE/m);
});
