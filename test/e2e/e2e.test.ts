/**
 * End-to-end suite: every case file of test/e2e/cases/ against a real Postfix 3.7 and a real
 * Sendmail 8.17, each started once for the whole suite (see docs/e2e.md).
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Mta } from './harness/mta.js';
import { casesDir } from './harness/paths.js';
import { PostfixInstance } from './harness/postfix.js';
import { SendmailInstance } from './harness/sendmail.js';
import { loadCaseSources, resolveCase } from './runner/case-file.js';
import { runCase } from './runner/run-case.js';
import { runExampleFilter } from './runner/example-filter.js';
import assert from 'node:assert/strict';

/** Ports 2500-2599 belong to this suite (see the project's port plan). */
const PORT_BASE = Number(process.env.MILTERKIT_E2E_PORT_BASE ?? 2525);
/** Seconds an MTA waits for each milter reply at the content stages; the slow-eom cases sleep past it. */
const CONTENT_TIMEOUT_S = 3;

const sources = loadCaseSources(casesDir);
const suiteDir = mkdtempSync(join(tmpdir(), 'milterkit-e2e-'));
// The MTAs' unprivileged processes (postfix, nobody) must reach the milter sockets and mailboxes.
chmodSync(suiteDir, 0o755);
const directory = (name: string) => {
  const dir = join(suiteDir, name);
  mkdirSync(dir, { mode: 0o755 });
  return dir;
};

const mtas: Mta[] = [
  new PostfixInstance({ dir: directory('postfix'), smtpPort: PORT_BASE, milterCommandTimeout: 10, milterContentTimeout: CONTENT_TIMEOUT_S }),
  new SendmailInstance({ dir: directory('sendmail'), smtpPort: PORT_BASE + 1, milterTimeouts: `C:5s;S:10s;R:${CONTENT_TIMEOUT_S}s;E:60s` }),
];

// after() does not run when the test process is interrupted or dies: kill the MTAs then.
process.once('exit', () => {
  for (const mta of mtas) mta.kill();
  if (!process.env.MILTERKIT_E2E_KEEP) rmSync(suiteDir, { recursive: true, force: true });
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => process.exit(signal === 'SIGINT' ? 130 : 143));
}

after(() => {
  if (process.env.MILTERKIT_E2E_KEEP) console.log(`e2e files kept in ${suiteDir}`);
});

for (const mta of mtas) {
  describe(`e2e on ${mta.name}`, () => {
    before(async () => {
      if (process.getuid?.() !== 0) throw new Error('the e2e suite runs private MTA instances and must run as root');
      await assertPortFree(mta.smtpPort);
      await mta.start();
    });
    after(() => mta.stop());

    it("README's start command: milterkit serve examples/add-header.ts tags mail and rejects REJECTME", async (t) => {
      const { problems, header, rejection } = await runExampleFilter(mta);
      assert.deepEqual(problems, []);
      // The queue ID comes from the macro list the example requests for end of message.
      assert.match(header ?? '', /^checked; client=\S+ \[(127\.0\.0\.1|::ffff:127\.0\.0\.1)\]; queue-id=(?!unknown)\w+$/);
      assert.equal(rejection, '550 5.7.1 Message refused by the milterkit example filter');
      t.diagnostic(`X-Milterkit: ${header}`);
    });

    for (const source of sources) {
      it(source.name, async (t) => {
        const summary = await runCase(mta, resolveCase(source, mta.name));
        t.diagnostic(summary);
      });
    }
  });
}

/** Fails clearly when something (often a previous run that was killed) still listens on `port`. */
async function assertPortFree(port: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', (error: NodeJS.ErrnoException) =>
      reject(new Error(`port ${port} on 127.0.0.1 is busy (${error.code}); is an earlier e2e run still alive? Set MILTERKIT_E2E_PORT_BASE to move the suite`)),
    );
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve()));
  });
}
