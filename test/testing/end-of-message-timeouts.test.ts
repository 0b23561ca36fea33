import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { Milter } from '../../src/index.js';
import { MilterTimeoutError } from '../../src/client/index.js';
import { sendmailProfile, type MtaProfile } from '../../src/mta/index.js';
import { testMilter } from '../../src/testing/index.js';

const message = 'From: a@example.org\nTo: b@example.net\nSubject: slow\n\nbody\n';

/**
 * Sendmail's end-of-message limits scaled down: each packet within 400 ms (T=R:), 4000 ms in all
 * (T=E:). The filters below send PROGRESS every 40 ms: ten times within the per-packet limit, so
 * a busy machine that delays a timer does not make them miss it; the one that must finish takes
 * 800 ms, five times under the total limit, for the same reason.
 */
const quickSendmail: MtaProfile = {
  ...sendmailProfile,
  client: { ...sendmailProfile.client, timeouts: { ...sendmailProfile.client.timeouts, endOfMessage: 400, endOfMessageTotal: 4000 } },
};

/** A filter whose end of message takes `ms`, with progress() every `progressEvery` ms when given. */
function slowFilter(ms: number, progressEvery?: number): typeof Milter {
  return class Slow extends Milter {
    override async eom() {
      for (let waited = 0; waited < ms; waited += progressEvery ?? ms) {
        await sleep(progressEvery ?? ms);
        if (progressEvery !== undefined) this.progress();
      }
      this.addHeader('X-Finished', 'yes');
      return 'continue' as const;
    }
  };
}

test('Sendmail profile: an end of message silent for longer than the per-packet limit (T=R:) times out, whatever the total limit', async () => {
  const report = await testMilter(slowFilter(1200), message, { profile: quickSendmail, milter: { progressInterval: 0 } });
  assert.ok(report.error instanceof MilterTimeoutError, String(report.error));
  assert.equal(report.error.timeoutMs, 400);
  assert.equal(report.header('X-Finished'), undefined, 'no F= flag: the message goes on unfiltered');
});

test('Sendmail profile: PROGRESS keeps the per-packet limit from running out, never the total one (T=E:)', async () => {
  const finished = await testMilter(slowFilter(800, 40), message, { profile: quickSendmail, milter: { progressInterval: 0 } });
  assert.equal(finished.error, undefined);
  assert.equal(finished.header('X-Finished'), 'yes');
  const endless = await testMilter(slowFilter(4400, 40), message, { profile: quickSendmail, milter: { progressInterval: 0 } });
  assert.ok(endless.error instanceof MilterTimeoutError, String(endless.error));
  assert.equal(endless.error.timeoutMs, 4000);
});
