import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { runChainOnCourierMessage } from '../../src/frontends/courier.js';
import { CourierConfig } from '../../src/courier/helpers/config.js';
import * as control from '../../src/courier/helpers/control.js';
import { Chain, type AnyFilter } from '../../src/filter-api/index.js';
import { domainOf } from '../../src/filters/deliveredto.js';
import { bundledFilters } from '../../src/filters/index.js';
import { copySpool, etcFixture, makeZip, memoryLogger, mimeWithAttachments, scratchPerSuite, spoolFixtures } from './support.js';

const spool = (name: string) => join(spoolFixtures, name);
const courier = new CourierConfig({ sysconfdir: etcFixture });
const { whitelist_auth: whitelistAuth, whitelist_relayclients: whitelistRelayclients, noduplicates, deliveredto, attachments, add_header: addHeader } = bundledFilters as Record<string, AnyFilter>;

/** Runs one bundled filter on Courier's files, as the daemon does. */
async function runFilter(filter: AnyFilter, dataPath: string, controlPaths: string[], options: Record<string, unknown> = {}) {
  const { logger, records } = memoryLogger();
  const chain = await Chain.load({ filters: [{ filter, options, onError: 'continue' }], logger });
  const errors: string[] = [];
  const reply = await runChainOnCourierMessage(chain, { dataPath, controlPaths }, { logger, courier });
  for (const record of records) if (record.event === 'filter-error') errors.push(String(record.err));
  return { reply, records, errors };
}

describe('whitelist_auth', () => {
  it('accepts authenticated senders and has no opinion on others', async () => {
    assert.equal((await runFilter(whitelistAuth!, spool('D-auth'), [spool('C-ipv6-auth')])).reply, '200 Ok');
    assert.equal((await runFilter(whitelistAuth!, spool('D-plain'), [spool('C-ipv4-mapped')])).reply, '');
  });
});

describe('whitelist_relayclients', () => {
  it('accepts relay clients by smtpaccess prefix, IPv4-mapped and IPv6 alike', async () => {
    assert.equal((await runFilter(whitelistRelayclients!, spool('D-plain'), [spool('C-ipv4-mapped')])).reply, '200 Ok');
    assert.equal((await runFilter(whitelistRelayclients!, spool('D-auth'), [spool('C-ipv6-auth')])).reply, '200 Ok');
  });

  it('has no opinion on a client without RELAYCLIENT', async () => {
    assert.equal((await runFilter(whitelistRelayclients!, spool('D-plain'), [spool('C-malformed-utf8')])).reply, '');
  });
});

describe('noduplicates', () => {
  const tmp = scratchPerSuite();

  it('keeps the first of duplicate recipients across split control files and logs the removal', async () => {
    const paths = await copySpool(tmp.dir, 'C1482777.1', 'C1482777.2');
    const { reply, records } = await runFilter(noduplicates!, spool('D-plain'), paths);
    assert.equal(reply, '');
    assert.deepEqual(await control.getRecipients(paths), ['alice@mail.test.example', 'carol@mail.test.example']);
    assert.match(await readFile(paths[1]!, 'utf8'), /\nI1 R 250 Ok - removed by mail filter\nS1 \d+\n$/);
    assert.deepEqual(records.filter((r) => r.event === 'recipient-removed').map((r) => r.recipient), ['alice@mail.test.example']);
  });

  it('removes the alias-expanded duplicate from a control file recorded from Courier', async () => {
    const paths = await copySpool(tmp.dir, 'C-real-alias-duplicate');
    await runFilter(noduplicates!, spool('D-real'), paths);
    assert.deepEqual(await control.getRecipients(paths), ['alice@mail.test.example', 'carol@mail.test.example']);
    assert.match(await readFile(paths[0]!, 'utf8'), /\nI1 R 250 Ok - removed by mail filter\nS1 \d+\n$/);
  });

  it('treats domains case-insensitively and leaves distinct recipients alone', async () => {
    const path = join(tmp.dir, 'C-case');
    await writeFile(path, 'sbob@sender.example\nralice@MAIL.test.example\nR\nN\nralice@mail.test.example\nR\nN\nrALICE@mail.test.example\nR\nN\n');
    await runFilter(noduplicates!, spool('D-plain'), [path]);
    assert.deepEqual(await control.getRecipients([path]), ['alice@MAIL.test.example', 'ALICE@mail.test.example']);
  });

  it('removes 2000 duplicates with one read and one write, far within a second-scale bound', async () => {
    const path = join(tmp.dir, 'C-many');
    await writeFile(path, 'sbob@sender.example\nMmany\n' + 'ralice@mail.test.example\nR\nN\n'.repeat(2001));
    const started = Date.now();
    const { records } = await runFilter(noduplicates!, spool('D-plain'), [path]);
    // One by one (a read, a parse and a sync per removal) this took about half a minute.
    assert.ok(Date.now() - started < 10_000, `took ${Date.now() - started} ms`);
    assert.deepEqual(await control.getRecipients([path]), ['alice@mail.test.example']);
    assert.equal(records.filter((r) => r.event === 'recipient-removed').length, 2000);
  });
});

describe('deliveredto', () => {
  it('rejects a message already delivered to a local or hosted domain', async () => {
    assert.equal((await runFilter(deliveredto!, spool('D-looped'), [spool('C-ipv4-mapped')])).reply, '501 Mail loop - already have my Delivered-To: header.');
    assert.equal((await runFilter(deliveredto!, spool('D-looped-hosted'), [spool('C-ipv4-mapped')])).reply, '501 Mail loop - already have my Delivered-To: header.');
  });

  it('accepts messages delivered elsewhere before, or never', async () => {
    assert.equal((await runFilter(deliveredto!, spool('D-delivered-elsewhere'), [spool('C-ipv4-mapped')])).reply, '');
    assert.equal((await runFilter(deliveredto!, spool('D-plain'), [spool('C-ipv4-mapped')])).reply, '');
  });

  it('extracts the domain from bare and named addresses', () => {
    assert.equal(domainOf('a@B.example'), 'b.example');
    assert.equal(domainOf('Name <a@b.example>'), 'b.example');
    assert.equal(domainOf('no address'), undefined);
  });
});

describe('attachments', () => {
  const tmp = scratchPerSuite();

  async function check(attachmentList: Parameters<typeof mimeWithAttachments>[0], options: Record<string, unknown> = {}) {
    const path = join(tmp.dir, `D-${Math.random().toString(36).slice(2)}`);
    await writeFile(path, mimeWithAttachments(attachmentList));
    return runFilter(attachments!, path, [spool('C-ipv4-mapped')], options);
  }
  const text = Buffer.from('hello\n');

  it('rejects a blocked file name', async () => {
    const { reply } = await check([{ filename: 'invoice.pdf.exe', type: 'application/octet-stream', data: text }]);
    assert.equal(reply, '554 5.7.1 The attachment "invoice.pdf.exe" is not accepted here.');
  });

  it('decodes RFC 2047 encoded names before matching', async () => {
    const encoded = `=?UTF-8?B?${Buffer.from('Rechnung-März.js').toString('base64')}?=`;
    const { reply } = await check([{ filename: 'Rechnung-März.js', encodedName: encoded, type: 'application/octet-stream', data: text }]);
    assert.equal(reply, '554 5.7.1 The attachment "Rechnung-März.js" is not accepted here.');
  });

  it('accepts harmless attachments', async () => {
    const { reply } = await check([
      { filename: 'report.pdf', type: 'application/pdf', data: text },
      { filename: 'photos.zip', type: 'application/zip', data: makeZip([{ name: 'a.jpg', data: 'x' }, { name: 'dir/b.txt', data: 'y' }]) },
    ]);
    assert.equal(reply, '');
  });

  it('looks inside zip archives, nested ones too', async () => {
    const inner = makeZip([{ name: 'readme.txt', data: 'x' }, { name: 'tools/setup.SCR', data: 'MZ' }]);
    const outer = makeZip([{ name: 'docs/notes.txt', data: 'y' }, { name: 'inner.zip', data: inner }]);
    const { reply } = await check([{ filename: 'bundle.zip', type: 'application/zip', data: outer }]);
    assert.equal(reply, '554 5.7.1 The attachment "bundle.zip" contains "inner.zip/tools/setup.SCR", which is not accepted here.');
    assert.equal((await check([{ filename: 'bundle.zip', type: 'application/zip', data: outer }], { maxArchiveDepth: 1 })).reply, '');
    assert.equal((await check([{ filename: 'bundle.zip', type: 'application/zip', data: outer }], { scanArchives: false })).reply, '');
  });

  it('recognises an archive by its content, whatever its name', async () => {
    const { reply } = await check([{ filename: 'data.bin', type: 'application/octet-stream', data: makeZip([{ name: 'run.exe', data: 'MZ' }]) }]);
    assert.match(String(reply), /^554 .*contains "run\.exe"/);
  });

  it('uses the configured pattern', async () => {
    const list = [{ filename: 'notes.txt', type: 'text/plain', data: text }];
    assert.equal((await check(list, { blockedPattern: '\\.txt$' })).reply, '554 5.7.1 The attachment "notes.txt" is not accepted here.');
    await assert.rejects(check(list, { blockedPattern: 7 }), /options\.blockedPattern: must be string/);
  });

  it('logs an unreadable archive and goes on', async () => {
    const broken = Buffer.concat([Buffer.from('PK\x03\x04'), Buffer.alloc(64, 0x41)]);
    const { reply, records } = await check([{ filename: 'broken.zip', type: 'application/zip', data: broken }]);
    assert.equal(reply, '');
    assert.ok(records.some((r) => r.event === 'archive-unreadable'));
  });

  it('does not call an archive clean when it exceeds the entry bound', async () => {
    const many = makeZip(Array.from({ length: 20 }, (_, i) => ({ name: `f${i}.txt`, data: 'x' })));
    // The failure policy decides (here: continue), never a silent "clean".
    const { errors } = await check([{ filename: 'many.zip', type: 'application/zip', data: many }], { maxArchiveEntries: 10 });
    assert.equal(errors.length, 1);
    assert.equal(errors[0], 'archive has more than 10 entries');
  });
});

describe('add_header', () => {
  const tmp = scratchPerSuite();

  it('adds the header in place and keeps the rest byte-identical', async () => {
    const [path] = await copySpool(tmp.dir, 'D-plain');
    const original = await readFile(path!);
    const { reply } = await runFilter(addHeader!, path!, [spool('C-ipv4-mapped')]);
    assert.equal(reply, '');
    const headerEnd = original.indexOf('\n\n') + 1;
    assert.deepEqual(
      await readFile(path!),
      Buffer.concat([original.subarray(0, headerEnd), Buffer.from('X-Filtered-By: milterkit on mail.test.example\n'), original.subarray(headerEnd)]),
    );
  });

  it('takes name, value placeholders and position from its options', async () => {
    const [path] = await copySpool(tmp.dir, 'D-auth');
    const original = await readFile(path!);
    await runFilter(addHeader!, path!, [spool('C-ipv6-auth')], { name: 'X-Queue', value: 'id {messageId}', position: 'top' });
    // "top" is the top of the fields filters see: right below Courier's own Received:, as on milter MTAs.
    const ownReceivedEnd = original.indexOf('\nFrom:') + 1;
    assert.deepEqual(
      await readFile(path!),
      Buffer.concat([original.subarray(0, ownReceivedEnd), Buffer.from('X-Queue: id 000000000016A019.000000006B0263F0.000049F3\n'), original.subarray(ownReceivedEnd)]),
    );
  });
});
