/**
 * End to end against real Courier (Debian 12's courier-mta 1.0.16 in a chroot): mail sent over
 * SMTP to Courier's ESMTP on a loopback port passes through the milterkit daemon, which
 * courierfilter runs after `filterctl start milterkit`. Assertions are on what an SMTP client
 * sees and on what lands in the mailboxes. One Courier runs both suites, one after the other: the
 * `modules:` chain below, then the filter API's conformance cases, each reloaded into the daemon.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { loadCourierCases, runOnRealCourier } from './chain-cases-runner.js';
import { CourierChroot } from './courier-chroot.js';
import { sendMail, type SmtpReply } from './smtp-client.js';
import { makeZip, repoRoot } from './support.js';

const CONFIG = `# milterkit end-to-end chain
modules:
  - module: /opt/milterkit/dist/test/courier/e2e/reply-by-subject.js
    name: reply-by-subject
  - module: /opt/milterkit/dist/examples/filters/external-tag.js
    options: { internalDomains: [sender.example, mail.test.example] }
  - attachments
  - deliveredto
  - noduplicates
  - module: /opt/milterkit/dist/examples/courier/recipient-policy.js
    options:
      archive: archive@mail.test.example
      drop: [carol@mail.test.example]
  - module: add_header
    options: { name: X-Milterkit, value: "checked on {me}" }
`;

const courier = new CourierChroot();
const FROM = 'bob@sender.example';
let counter = 0;

function message(subject: string, extraHeaders = '', body = 'Hello from the end-to-end test.\n'): { subject: string; text: string } {
  const unique = `${subject} #${++counter} ${process.pid}`;
  return { subject: unique, text: `From: Bob <${FROM}>\nTo: Alice <alice@mail.test.example>\nSubject: ${unique}\n${extraHeaders}\n${body}` };
}

/** The queue id Courier gives in `250 Ok. <id>`. */
function queueId(reply: SmtpReply): string {
  const id = /^250 Ok\. (\S+)/.exec(reply.lines.at(-1) ?? '')?.[1];
  assert.ok(id, `no queue id in ${JSON.stringify(reply.lines)}`);
  return id;
}

async function delivered(user: string, subject: string): Promise<string[]> {
  return (await courier.mailbox(user)).filter((m) => m.includes(`Subject: ${subject}\n`));
}

before(async () => {
  await courier.check();
  await courier.install(repoRoot, CONFIG);
  await courier.reset(['alice', 'carol', 'archive']);
  await courier.start();
});

after(async () => {
  await courier.stop();
  const log = await courier.log();
  const relevant = log.split('\n').filter((l) => /courierfilter|courieresmtpd: error/.test(l));
  // Shown in the test output, so a failure can be read without the chroot.
  console.log(relevant.slice(-40).join('\n'));
});

describe('real Courier with the milterkit daemon', { timeout: 600_000 }, () => {

  it('accepts a message: 250 to the client, header added in place, archive recipient added', async () => {
    const { subject, text } = message('e2e-accept');
    const { data } = await sendMail(courier.port, { from: FROM, to: ['alice@mail.test.example'] }, text);
    assert.equal(data.code, 250, data.lines.join('\n'));
    await courier.waitForCompletion(queueId(data));
    const [copy] = await delivered('alice', subject);
    assert.ok(copy, 'delivered to alice');
    assert.match(copy, /\nX-Milterkit: checked on mail\.test\.example\n/);
    assert.match(copy, /\n\nHello from the end-to-end test\.\n$/);
    assert.equal((await delivered('archive', subject)).length, 1, 'archive copy (recipient added by the filter)');
  });

  it("the filter author's guide example (filter API) prefixes the Subject of mail from outside", async () => {
    const { subject, text } = message('e2e-external');
    const { data } = await sendMail(courier.port, { from: 'eve@outside.example', to: ['alice@mail.test.example'] }, text);
    assert.equal(data.code, 250, data.lines.join('\n'));
    await courier.waitForCompletion(queueId(data));
    const copies = (await courier.mailbox('alice')).filter((m) => m.includes(`Subject: [EXTERNAL] ${subject}\n`));
    assert.equal(copies.length, 1, 'delivered with the prefix');
  });

  it('rejects with 5xx: the client sees the module reply and nothing is delivered', async () => {
    const { subject, text } = message('e2e-reject');
    const { data } = await sendMail(courier.port, { from: FROM, to: ['alice@mail.test.example'] }, text);
    assert.deepEqual(data, { code: 550, lines: ['550 5.7.1 Rejected by the milterkit end-to-end test'] });
    assert.deepEqual(await delivered('alice', subject), []);
    assert.match(await courier.log(), /courieresmtpd: error,relay=.*550 5\.7\.1 Rejected by the milterkit end-to-end test/);
  });

  it('passes a multi-line rejection to the client line by line', async () => {
    const { text } = message('e2e-multi');
    const { data } = await sendMail(courier.port, { from: FROM, to: ['alice@mail.test.example'] }, text);
    assert.deepEqual(data, {
      code: 550,
      lines: ['550-5.7.1 First line of a multi-line rejection', '550 5.7.1 Second line of a multi-line rejection'],
    });
  });

  it('tempfails with 4xx', async () => {
    const { text } = message('e2e-tempfail');
    const { data } = await sendMail(courier.port, { from: FROM, to: ['alice@mail.test.example'] }, text);
    assert.equal(data.code, 451);
    assert.match(data.lines[0]!, /Try again later/);
  });

  it('maps a module that throws to the configured tempfail, not to an accept', async () => {
    const { subject, text } = message('e2e-throw');
    const { data } = await sendMail(courier.port, { from: FROM, to: ['alice@mail.test.example'] }, text);
    assert.equal(data.code, 451);
    assert.match(data.lines[0]!, /Mail filter temporarily unavailable/);
    assert.deepEqual(await delivered('alice', subject), []);
  });

  it('0xx: accepts and skips every later filter (the client sees 2xx, no header, no archive copy)', async () => {
    const { subject, text } = message('e2e-skip');
    const { data } = await sendMail(courier.port, { from: FROM, to: ['alice@mail.test.example'] }, text);
    assert.equal(data.code, 250);
    assert.match(data.lines[0]!, /Accepted; later filters skipped/);
    // Courier answers the client before queueing; wait for the delivery by subject instead of id.
    const deadline = Date.now() + 60_000;
    while ((await delivered('alice', subject)).length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    const [copy] = await delivered('alice', subject);
    assert.ok(copy, 'delivered to alice');
    assert.doesNotMatch(copy, /X-Milterkit:/);
    assert.deepEqual(await delivered('archive', subject), []);
  });

  it('removes recipients: a duplicate from alias expansion and a dropped address', async () => {
    // team@ expands to alice and carol: alice would get two copies, carol is on the drop list.
    const { subject, text } = message('e2e-recipients');
    const { data, rcpt } = await sendMail(courier.port, { from: FROM, to: ['alice@mail.test.example', 'team@mail.test.example'] }, text);
    assert.deepEqual(rcpt.map((r) => r.code), [250, 250]);
    assert.equal(data.code, 250, data.lines.join('\n'));
    await courier.waitForCompletion(queueId(data));
    assert.equal((await delivered('alice', subject)).length, 1, 'one copy for alice');
    assert.equal((await delivered('carol', subject)).length, 0, 'none for carol');
    assert.equal((await delivered('archive', subject)).length, 1, 'one archive copy');
    const log = await courier.log();
    assert.match(log, /courierfilter: .*"event":"recipient-removed","recipient":"alice@mail\.test\.example"/);
    assert.match(log, /courierfilter: .*"event":"recipient-removed","recipient":"carol@mail\.test\.example"/);
  });

  it('rejects an executable hidden in a zip attachment', async () => {
    const zip = makeZip([{ name: 'docs/readme.txt', data: 'x' }, { name: 'docs/setup.exe', data: 'MZ' }]).toString('base64');
    const { subject, text } = message(
      'e2e-attachment',
      'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="b1"\n',
      `--b1\nContent-Type: text/plain\n\nSee attached.\n--b1\nContent-Type: application/zip; name="docs.zip"\nContent-Disposition: attachment; filename="docs.zip"\nContent-Transfer-Encoding: base64\n\n${zip}\n--b1--\n`,
    );
    const { data } = await sendMail(courier.port, { from: FROM, to: ['alice@mail.test.example'] }, text);
    assert.equal(data.code, 554);
    assert.match(data.lines[0]!, /docs\.zip" contains "docs\/setup\.exe"/);
    assert.deepEqual(await delivered('alice', subject), []);
  });

  it('rejects a mail loop (Delivered-To naming a local domain)', async () => {
    const { text } = message('e2e-loop', 'Delivered-To: alice@mail.test.example\n');
    const { data } = await sendMail(courier.port, { from: FROM, to: ['alice@mail.test.example'] }, text);
    assert.equal(data.code, 501);
    assert.match(data.lines[0]!, /Mail loop/);
  });
});

describe('filter API conformance cases on real Courier (predicted by the offline courier profile)', { timeout: 600_000 }, () => {
  const { cases, unpaired } = loadCourierCases();
  it('every chain case has Courier expectations, and every expectation a case', () => {
    assert.deepEqual(unpaired, []);
  });

  for (const courierCase of cases) {
    it(courierCase.kase.name, async (t) => {
      t.diagnostic(await runOnRealCourier(courier, courierCase));
    });
  }
});
