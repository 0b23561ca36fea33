/**
 * A filter that changes the envelope sender on Courier, which cannot do it after DATA: the edit
 * fails inside the hook, so the filter's own `onError` decides (tempfail, reject, or continue
 * without that hook's edits), the same through the front-end, the daemon and the offline profile.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { loadCourierChain, loadCourierSettings } from '../../src/cli/courier-settings.js';
import { CourierConfig } from '../../src/courier/helpers/config.js';
import * as control from '../../src/courier/helpers/control.js';
import { formatReply } from '../../src/courier/reply.js';
import { Chain, type FailurePolicy } from '../../src/filter-api/index.js';
import { runChainOnCourierMessage } from '../../src/frontends/courier.js';
import { runOnCourier } from '../../src/frontends/courier-offline.js';
import { copySpool, etcFixture, memoryLogger, scratchPerSuite } from '../courier/support.js';
import resender from './modules/resender.js';
import stamp from '../courier/modules/api-stamp.js';

const resenderPath = fileURLToPath(new URL('./modules/resender.js', import.meta.url));
const stampPath = fileURLToPath(new URL('../courier/modules/api-stamp.js', import.meta.url));
const SENDER = 'bob@sender.example';

/** Each failure policy of the filter that changes the sender, and what the client is told. */
const POLICIES: ReadonlyArray<{ onError: FailurePolicy; reply: RegExp; verdict: 'tempfail' | 'reject' | 'accept' }> = [
  { onError: 'tempfail', reply: /^451 4\.3\.0 /, verdict: 'tempfail' },
  { onError: 'reject', reply: /^550 5\.7\.1 /, verdict: 'reject' },
  { onError: 'continue', reply: /^(200 Ok)?$/, verdict: 'accept' },
];

/** What one run left behind: the reply, the header as written, the envelope sender, the log. */
interface Outcome {
  readonly reply: string;
  readonly verdict: 'tempfail' | 'reject' | 'accept';
  readonly header: string;
  readonly sender: string;
  readonly logged: ReadonlyArray<Record<string, unknown>>;
}

const verdictOf = (reply: string): Outcome['verdict'] => (reply.startsWith('4') ? 'tempfail' : reply.startsWith('5') ? 'reject' : 'accept');

/** The chain `resender` (with the policy) then `api-stamp`, run three ways on one Courier message. */
const RUNNERS: ReadonlyArray<{ name: string; run: (dir: string, onError: FailurePolicy) => Promise<Outcome> }> = [
  {
    name: 'the Courier front-end',
    async run(dir, onError) {
      const [dataPath, controlPath] = await copySpool(dir, 'D-plain', 'C-real-alias-duplicate');
      const { logger, records } = memoryLogger();
      const chain = await Chain.load({ filters: [{ filter: resender, onError }, { filter: stamp }], logger });
      const reply = await runChainOnCourierMessage(chain, { dataPath: dataPath!, controlPaths: [controlPath!] }, { logger });
      const data = control.controlDataOf(await control.readControlFiles([controlPath!]));
      return { reply, verdict: verdictOf(reply), header: await readFile(dataPath!, 'latin1'), sender: data.sender, logged: records };
    },
  },
  {
    name: 'the daemon, configured in the filter API\'s format',
    async run(dir, onError) {
      const file = join(dir, `sender-${onError}.yaml`);
      await writeFile(file, `chain:\n  - filter: ${resenderPath}\n    onError: ${onError}\n  - filter: ${stampPath}\n`);
      const [dataPath, controlPath] = await copySpool(dir, 'D-plain', 'C-real-alias-duplicate');
      const { logger, records } = memoryLogger();
      const chain = await loadCourierChain(await loadCourierSettings(file), new CourierConfig({ sysconfdir: etcFixture }), logger);
      const reply = formatReply(await chain.filter({ dataPath: dataPath!, controlPaths: [controlPath!] })).trimEnd();
      const data = control.controlDataOf(await control.readControlFiles([controlPath!]));
      return { reply, verdict: verdictOf(reply), header: await readFile(dataPath!, 'latin1'), sender: data.sender, logged: records };
    },
  },
  {
    name: 'the offline courier profile',
    async run(_dir, onError) {
      const { logger, records } = memoryLogger();
      const chain = await Chain.load({ filters: [{ filter: resender, onError }, { filter: stamp }], logger });
      const report = await runOnCourier(chain, 'From: <bob@sender.example>\r\nSubject: hello\r\n\r\nbody\r\n', { from: `<${SENDER}>`, recipients: ['<alice@mail.test.example>'], logger });
      const header = report.headers().map((field) => `${field.name}: ${field.value.trim()}`).join('\n');
      const reply = report.verdict === 'accept' ? '' : report.smtpReply;
      return { reply, verdict: report.verdict as Outcome['verdict'], header, sender: report.envelope?.sender.slice(1, -1) ?? SENDER, logged: records };
    },
  },
];

describe('a sender change on Courier is that filter\'s failure, under its own onError', () => {
  const scratch = scratchPerSuite();
  for (const runner of RUNNERS) {
    for (const policy of POLICIES) {
      it(`${runner.name}: onError ${policy.onError}`, async () => {
        const outcome = await runner.run(scratch.dir, policy.onError);
        assert.equal(outcome.verdict, policy.verdict, outcome.reply);
        assert.match(outcome.reply, policy.reply);
        assert.equal(outcome.sender, SENDER, 'the envelope sender is never changed');
        assert.doesNotMatch(outcome.header, /^X-Resent:/m, 'the failed hook\'s other edits are dropped');
        // Only with continue does the chain go on to the next filter, whose edit is written.
        assert.equal(/^X-Api-Stamp: yes$/m.test(outcome.header), policy.onError === 'continue');
        const failure = outcome.logged.find((r) => r.event === 'filter-error' && r.filter === 'resender');
        assert.ok(failure, 'the failure is logged');
        assert.equal(failure.policy, policy.onError);
        assert.match(String(failure.msg), /^filter "resender" message hook failed: filter "resender" cannot change the sender: Courier runs global filters after DATA/);
      });
    }
  }
});
