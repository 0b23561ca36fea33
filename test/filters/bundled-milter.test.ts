/** The bundled filters on milter MTAs, through the test kit: their milter-side data sources. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Chain, defineFilter, reject, type ChainEntryConfig } from '../../src/filter-api/index.js';
import { bundledFilters } from '../../src/filters/index.js';
import { chainMilter } from '../../src/frontends/milter.js';
import { testMilter } from '../../src/testing/index.js';
import { makeZip } from '../courier/support.js';

const message = 'From: bob@sender.example\r\nTo: alice@mail.test.example\r\nSubject: hi\r\n\r\nHello\r\n';
const strict: ChainEntryConfig = { filter: defineFilter({ name: 'strict', sender: () => reject('strict') }) };

async function run(filters: ChainEntryConfig[], options: Parameters<typeof testMilter>[2] = {}, text = message) {
  const chain = await Chain.load({ filters });
  return testMilter(chainMilter(chain), text, { from: '<bob@sender.example>', recipients: ['<alice@mail.test.example>'], ...options });
}

for (const profile of ['postfix', 'sendmail'] as const) {
  test(`${profile}: whitelist_auth accepts on {auth_authen} and its for list skips only the named filter`, async () => {
    const entries = [{ filter: bundledFilters.whitelist_auth!, for: ['strict'] }, strict];
    assert.equal((await run(entries, { profile, macros: { '{auth_authen}': 'bob' } })).verdict, 'accept');
    assert.equal((await run(entries, { profile })).verdict, 'reject');
  });

  test(`${profile}: whitelist_relayclients accepts clients in relayNetworks`, async () => {
    const entries = [{ filter: bundledFilters.whitelist_relayclients!, options: { relayNetworks: ['192.0.2.0/24', '2001:db8::/32'] } }, strict];
    assert.equal((await run(entries, { profile, client: { address: '192.0.2.10' } })).verdict, 'accept');
    assert.equal((await run(entries, { profile, client: { address: '2001:db8::25' } })).verdict, 'accept');
    assert.equal((await run(entries, { profile, client: { address: '198.51.100.1' } })).verdict, 'reject');
  });

  test(`${profile}: deliveredto refuses a loop through the configured local domains`, async () => {
    const looped = `Delivered-To: alice@MAIL.test.example\r\n${message}`;
    const entries = [{ filter: bundledFilters.deliveredto!, options: { localDomains: ['mail.test.example'] } }];
    const report = await run(entries, { profile }, looped);
    assert.equal(report.verdict, 'reject');
    assert.match(report.smtpReply, /^501 Mail loop/);
    assert.equal((await run(entries, { profile })).verdict, 'accept');
  });

  test(`${profile}: add_header fills {me} from the j macro and {messageId} from the queue id`, async () => {
    const report = await run([{ filter: bundledFilters.add_header!, options: { value: 'on {me} id {messageId}', position: 'top' } }], { profile, hostname: 'mx.example.test', macros: { i: 'QID42' } });
    assert.equal(report.header('X-Filtered-By'), 'on mx.example.test id QID42');
  });

  test(`${profile}: noduplicates removes a recipient given twice`, async () => {
    const report = await run([{ filter: bundledFilters.noduplicates! }], { profile, recipients: ['<alice@mail.test.example>', '<carol@mail.test.example>', '<alice@MAIL.test.example>'] });
    assert.equal(report.verdict, 'accept');
    assert.deepEqual(report.modifications.filter((m) => m.type === 'deleteRecipient').length, 1);
  });
}

// Single-part messages: most pass attachments without a MIME scan, but never one with a file
// name in its header or an archive as its body.
const singlePartCases: Array<{ what: string; header: string; body: Buffer | string; verdict: 'accept' | 'reject' }> = [
  { what: 'plain text', header: 'Content-Type: text/plain; charset=us-ascii\r\nContent-Transfer-Encoding: 7bit\r\n', body: 'Hello\r\n', verdict: 'accept' },
  { what: 'no MIME header at all', header: '', body: 'Hello\r\n', verdict: 'accept' },
  { what: 'a Content-Disposition file name', header: 'Content-Type: text/plain\r\nContent-Disposition: attachment; filename="setup.exe"\r\n', body: 'MZ\r\n', verdict: 'reject' },
  { what: 'a Content-Type name', header: 'Content-Type: application/octet-stream; name="setup.exe"\r\n', body: 'MZ\r\n', verdict: 'reject' },
  { what: 'a text type with a name', header: 'Content-Type: text/plain;\r\n name="run.bat"\r\n', body: 'echo\r\n', verdict: 'reject' },
  { what: 'an encoded file name (RFC 2231)', header: "Content-Type: text/plain\r\nContent-Disposition: attachment; filename*=utf-8''setup%2Eexe\r\n", body: 'MZ\r\n', verdict: 'reject' },
  {
    what: 'an attached message',
    header: 'Content-Type: message/rfc822\r\n',
    body: 'Subject: inner\r\nContent-Type: application/octet-stream; name="inner.exe"\r\n\r\nMZ\r\n',
    verdict: 'reject',
  },
  {
    what: 'a base64 zip archive as the body',
    header: 'Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n',
    body: makeZip([{ name: 'setup.exe', data: 'MZ' }]).toString('base64') + '\r\n',
    verdict: 'reject',
  },
];
for (const { what, header, body, verdict } of singlePartCases) {
  test(`attachments on a single-part message with ${what}: ${verdict}`, async () => {
    const text = Buffer.concat([Buffer.from(`From: bob@sender.example\r\nTo: alice@mail.test.example\r\nSubject: hi\r\n${header}\r\n`), Buffer.from(body)]);
    const report = await run([{ filter: bundledFilters.attachments! }], {}, text as unknown as string);
    assert.equal(report.verdict, verdict, report.smtpReply);
  });
}
