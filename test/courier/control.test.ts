import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import * as control from '../../src/courier/helpers/control.js';
import { copySpool, scratchPerSuite, spoolFixtures } from './support.js';

const spool = (name: string) => join(spoolFixtures, name);

describe('control files: reading', () => {
  it('reads the envelope of an SMTP message with an IPv4-mapped client address', async () => {
    const data = await control.getControlData([spool('C-ipv4-mapped')]);
    assert.equal(data.sender, 'bob@sender.example');
    assert.equal(data.receivedFromMta, 'dns; client.example ([::ffff:192.0.2.10])');
    assert.equal(data.messageId, '000000000016A018.000000006B0263EF.000049F2');
    assert.equal(data.envid, undefined);
    assert.equal(data.dsnReturn, undefined);
    assert.equal(data.authenticatedUser, undefined);
    assert.equal(data.source, 'smtp');
    assert.equal(data.expiresAt, 1795923567);
    assert.equal(data.warnAt, 1795332567);
    assert.equal(data.trackBackscatter, true);
    assert.equal(data.eightBitBody, false);
    assert.deepEqual(data.environment, { RELAYCLIENT: '', TCPREMOTEIP: '::ffff:192.0.2.10' });
    assert.deepEqual(data.recipients, [
      { address: 'alice@mail.test.example', orcpt: '', dsn: '' },
      { address: 'carol@mail.test.example', orcpt: 'rfc822;team@mail.test.example', dsn: 'SF' },
    ]);
  });

  it('unwraps the IPv4-mapped sender address', async () => {
    assert.equal(await control.getSendersIp([spool('C-ipv4-mapped')]), '192.0.2.10');
  });

  it('reads IPv6, AUTH, DSN and 8-bit records', async () => {
    const paths = [spool('C-ipv6-auth')];
    const data = await control.getControlData(paths);
    assert.equal(await control.getSendersIp(paths), '2001:db8::25');
    assert.equal(await control.getAuthUser(paths), 'alice');
    assert.equal(data.authenticatedUser, 'alice');
    assert.equal(data.source, 'authsmtp');
    assert.equal(data.envid, 'ENV-123');
    assert.equal(data.dsnReturn, 'H');
    assert.equal(data.vhost, 'mail.test.example');
    assert.equal(data.eightBitBody, true);
    assert.equal(await control.getSendersMta(paths), 'dns; laptop.example ([2001:db8::25])');
    assert.deepEqual(await control.getRecipientsData(paths), [{ address: 'dave@remote.example', orcpt: 'rfc822;dave@remote.example', dsn: 'F' }]);
  });

  it('finds the AUTH user in the Received header when the control file has no i record', async () => {
    assert.equal(await control.getAuthUser([spool('C-ipv4-mapped')], spool('D-auth')), 'alice');
    assert.equal(await control.getAuthUser([spool('C-ipv4-mapped')], spool('D-plain')), undefined);
  });

  it('falls back to the Received-From-MTA record for the IP', async () => {
    assert.equal(await control.getSendersIp([spool('C-malformed-utf8')]), '192.0.2.99');
  });

  it('finds the IP in control files already read, as the Courier front-end does with the files of each message', async () => {
    for (const [name, ip] of [
      ['C-ipv4-mapped', '192.0.2.10'],
      ['C-ipv6-auth', '2001:db8::25'],
      ['C-malformed-utf8', '192.0.2.99'],
      ['C-real-alias-duplicate', '127.0.0.1'],
    ] as const) {
      const files = await control.readControlFiles([spool(name)]);
      assert.equal(control.sendersIpOf(files), ip, name);
      assert.equal(control.sendersIpOf(files, control.controlDataOf(files)), ip, name);
    }
  });

  it('collects recipients across batchsize-split control files, each numbered from 0', async () => {
    const paths = [spool('C1482777.1'), spool('C1482777.2')];
    const all = await control.getAllRecipients(paths);
    assert.deepEqual(
      all.map((r) => [r.address, r.file.endsWith('.1') ? 1 : 2, r.index]),
      [['alice@mail.test.example', 1, 0], ['carol@mail.test.example', 2, 0], ['alice@mail.test.example', 2, 1]],
    );
    assert.deepEqual(await control.getRecipients(paths), ['alice@mail.test.example', 'carol@mail.test.example', 'alice@mail.test.example']);
    // Envelope records come from the first file; each file has its own message id.
    assert.equal((await control.getControlData(paths)).messageId, '000000000016A01A.000000006B0263F1.00004A00');
    assert.deepEqual(await control.getLines(paths, 'M'), ['000000000016A01A.000000006B0263F1.00004A00', '000000000016A01A.000000006B0263F1.00004A01']);
    assert.deepEqual(await control.getLines(paths, 'M', 1), ['000000000016A01A.000000006B0263F1.00004A00']);
  });

  it('marks malformed UTF-8 instead of failing or silently replacing it', async () => {
    const paths = [spool('C-malformed-utf8')];
    assert.equal(await control.getSender(paths), '(malformed utf8):%FFbob%C3@sender.example');
    assert.deepEqual(await control.getRecipients(paths), ['alice@mail.test.example', '(malformed utf8):%E4rger@mail.test.example']);
    const raw = (await control.readControlFiles(paths))[0]!.records[0]!.raw;
    assert.deepEqual([...raw.subarray(0, 4)], [0xff, 0x62, 0x6f, 0x62]);
  });

  // Each line decodes on its own: an ASCII file, a valid UTF-8 one, and one with a malformed line among valid ones.
  const DECODING_CASES: Array<{ what: string; bytes: Buffer; values: string[] }> = [
    { what: 'ASCII with CRLF', bytes: Buffer.from('sbob@sender.example\r\nralice@mail.test.example\r\nR\r\nN\r\n'), values: ['bob@sender.example', 'alice@mail.test.example', '', ''] },
    { what: 'valid UTF-8', bytes: Buffer.from('sjürgen@sender.example\nrärger@mail.test.example\nR\nN\n'), values: ['jürgen@sender.example', 'ärger@mail.test.example', '', ''] },
    {
      what: 'one malformed line among valid UTF-8',
      bytes: Buffer.concat([Buffer.from('sjürgen@sender.example\nr'), Buffer.from([0xe4]), Buffer.from('rger@mail.test.example\nR\nN')]),
      values: ['jürgen@sender.example', '(malformed utf8):%E4rger@mail.test.example', '', ''],
    },
  ];
  for (const { what, bytes, values } of DECODING_CASES) {
    it(`decodes each record on its own: ${what}`, () => {
      const file = control.parseControlFile('C-test', bytes);
      assert.deepEqual(file.records.map((r) => r.type).join(''), 'srRN');
      assert.deepEqual(file.records.map((r) => r.value), values);
      // The raw bytes of the records give the file back (without CRs, with a final LF).
      const rebuilt = Buffer.concat(file.records.flatMap((r) => [Buffer.from(r.type), r.raw, Buffer.from('\n')]));
      assert.deepEqual(rebuilt, Buffer.from(bytes.toString('latin1').replace(/\r/g, '').replace(/\n?$/, '\n'), 'latin1'));
      assert.deepEqual(file.recipients.map((r) => r.address), [values[1]]);
    });
  }

  it('leaves out recipients that have an S or F record, keeps deferred ones', async () => {
    const paths = [spool('C-after-delivery')];
    assert.deepEqual(await control.getRecipients(paths), ['dave@remote.example']);
    const all = await control.getAllRecipients(paths);
    assert.deepEqual(all.map((r) => r.delivered), [true, true, false]);
  });

  it('types every record letter of the table', () => {
    const file = control.parseControlFile('x', Buffer.from('sa@b\nw\nm\nV\nUnone\nXcancelled\nx\nL5\nA123\nC1795332700\np1795923567\n'));
    const data = control.controlDataOf([file]);
    assert.equal(data.warningSent, true);
    assert.equal(data.eightBitHeaders, true);
    assert.equal(data.verp, true);
    assert.equal(data.securityLevel, 'none');
    assert.equal(data.cancelled, 'cancelled');
    assert.equal(data.faxExpiresAt, 1795923567);
    assert.deepEqual(file.records.map((r) => r.type).join(''), 'swmVUXxLACp');
  });

  it('rejects an empty list of control files', async () => {
    await assert.rejects(control.readControlFiles([]), /no control file/);
  });
});

describe('control files recorded from Courier 1.0.16', () => {
  it('alias expansion: the alias itself is already marked delivered, its targets follow', async () => {
    const paths = [spool('C-real-alias-duplicate')];
    const all = await control.getAllRecipients(paths);
    assert.deepEqual(
      all.map((r) => [r.address, r.dsn, r.delivered]),
      [['alice@mail.test.example', '', false], ['alice@mail.test.example', 'N', false], ['carol@mail.test.example', 'N', false], ['team@mail.test.example', '', true]],
    );
    const data = await control.getControlData(paths);
    assert.equal(data.source, 'authsmtp');
    assert.equal(data.authenticatedUser, undefined);
    assert.equal(data.environment.RELAYCLIENT, '');
    assert.equal(await control.getSendersIp(paths), '127.0.0.1');
  });

  it('SMTP AUTH: the i record and the Received header agree', async () => {
    assert.equal(await control.getAuthUser([spool('C-real-auth')]), 'alice');
    assert.equal(await control.getAuthUser([spool('C-real-alias-duplicate')], spool('D-real-auth')), 'alice');
    assert.equal(await control.getAuthUser([spool('C-real-alias-duplicate')], spool('D-real')), undefined);
  });

  it('batchsize=1 with two recipients: two files, one recipient each, own message ids', async () => {
    const paths = [spool('C-real-batch.1'), spool('C-real-batch.2')];
    assert.deepEqual(await control.getRecipients(paths), ['alice@mail.test.example', 'carol@mail.test.example']);
    const ids = await control.getLines(paths, 'M');
    assert.equal(ids.length, 2);
    assert.notEqual(ids[0], ids[1]);
    assert.deepEqual((await control.getAllRecipients(paths)).map((r) => r.index), [0, 0]);
  });
});

describe('control files: editing', () => {
  const tmp = scratchPerSuite();

  it('reads small control files at once and leaves a large one to the reader with a deadline', async () => {
    const [small] = await copySpool(tmp.dir, 'C-ipv4-mapped');
    const large = join(tmp.dir, 'C-large');
    // Many recipients: over the size read at once, under the control file bound.
    await writeFile(large, (await readFile(small!, 'utf8')) + 'rbulk@mail.test.example\nR\nN\n'.repeat(12_000));
    assert.deepEqual(control.readSmallControlFiles([small!])?.map((f) => f.recipients.length), [2]);
    assert.equal(control.readSmallControlFiles([small!, large]), undefined);
    assert.equal((await control.readControlFiles([large]))[0]!.recipients.length, 12_002);
  });

  it('adds a recipient to the last control file of a batchsize split', async () => {
    const paths = await copySpool(tmp.dir, 'C1482777.1', 'C1482777.2');
    const firstBefore = await readFile(paths[0]!);
    await control.addRecipient(paths, 'archive@mail.test.example');
    await control.addRecipient(paths, { address: 'eve@remote.example', orcpt: 'rfc822;eve@remote.example', dsn: 'N' });
    assert.deepEqual(await readFile(paths[0]!), firstBefore);
    const tail = (await readFile(paths[1]!, 'utf8')).split('\n').slice(-7).join('\n');
    assert.equal(tail, 'rarchive@mail.test.example\nR\nN\nreve@remote.example\nRrfc822;eve@remote.example\nNN\n');
    assert.deepEqual((await control.getRecipients(paths)).slice(-2), ['archive@mail.test.example', 'eve@remote.example']);
  });

  it('refuses a recipient that would inject records', async () => {
    const paths = await copySpool(tmp.dir, 'C-ipv4-mapped');
    await assert.rejects(control.addRecipient(paths, 'a@b\nS0 1'), /single line/);
  });

  it('removes a recipient by marking it delivered in its own file, and logs it', async () => {
    const paths = await copySpool(tmp.dir, 'C1482777.1', 'C1482777.2');
    const logged: unknown[] = [];
    const logger = { info: (o: unknown) => logged.push(o), warn() {}, error() {}, debug() {}, child() { return logger; } };
    const removed = await control.removeRecipient(paths, { address: 'alice@mail.test.example', orcpt: '', dsn: '' }, {
      reason: 'test removal',
      now: () => 1795332999,
      logger: logger as never,
    });
    assert.equal(removed?.file, paths[0]);
    assert.equal(removed?.index, 0);
    assert.match(await readFile(paths[0]!, 'utf8'), /\nI0 R 250 Ok - test removal\nS0 1795332999\n$/);
    // The second alice (file 2, index 1) is still undelivered; remove it by address too.
    const second = await control.removeRecipient(paths, 'alice@mail.test.example', { now: () => 1795333000, logger: logger as never });
    assert.equal(second?.file, paths[1]);
    assert.equal(second?.index, 1);
    assert.match(await readFile(paths[1]!, 'utf8'), /\nI1 R 250 Ok - Removed by milterkit\nS1 1795333000\n$/);
    assert.deepEqual(await control.getRecipients(paths), ['carol@mail.test.example']);
    assert.equal(await control.removeRecipient(paths, 'nobody@mail.test.example', { logger: logger as never }), undefined);
    assert.equal(logged.length, 2);
    assert.deepEqual(logged[0], { event: 'recipient-removed', recipient: 'alice@mail.test.example', messageId: '000000000016A01A.000000006B0263F1.00004A00', reason: 'test removal' });
  });
});
