import assert from 'node:assert/strict';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { CourierMessage, encodeHeaderWords, splitMessage } from '../../src/courier/helpers/message.js';
import { copySpool, scratchPerSuite, spoolFixtures } from './support.js';

describe('CourierMessage: reading', () => {
  // Each field's value: unfolded, without its line end and leading blanks; its raw bytes exactly as in the file.
  const FIELD_CASES: Array<{ header: string; name: string; value: string }> = [
    { header: 'Subject: Hello\n', name: 'Subject', value: 'Hello' },
    { header: 'Subject: Hello\r\n', name: 'Subject', value: 'Hello' },
    { header: 'Subject:\t \tHello \n', name: 'Subject', value: 'Hello ' },
    { header: 'Subject:\n', name: 'Subject', value: '' },
    { header: 'Subject: \r\n', name: 'Subject', value: '' },
    { header: 'Subject: a\n\tb\n c\n', name: 'Subject', value: 'a\tb c' },
    { header: 'Subject: a\r\n b\r\n', name: 'Subject', value: 'a b' },
    { header: 'Subject:\n  folded only\n', name: 'Subject', value: 'folded only' },
    { header: 'Subject: Grüße\n', name: 'Subject', value: 'Grüße' },
    { header: 'not a field\n', name: '', value: '' },
  ];
  for (const { header, name, value } of FIELD_CASES) {
    it(`reads the field ${JSON.stringify(header)}`, () => {
      const bytes = Buffer.from(`${header}X-Next: n\n\nbody\n`);
      const split = splitMessage(bytes);
      assert.deepEqual(split.fields.map((f) => [f.name, f.value]), [[name, value], ['X-Next', 'n']]);
      assert.equal(split.fields[0]!.raw.toString(), header);
      assert.equal(Buffer.concat([...split.fields.map((f) => f.raw), split.separator, split.body]).toString(), bytes.toString());
    });
  }

  it('splits header fields, folded ones included, from the body', async () => {
    const message = await CourierMessage.open(join(spoolFixtures, 'D-plain'));
    const names = message.headers().map((h) => h.name);
    assert.deepEqual(names, ['Received', 'From', 'To', 'Subject', 'Date', 'Message-ID', 'X-Folded']);
    assert.equal(message.header('x-folded'), 'first part\tsecond part');
    assert.equal(message.header('subject'), 'Hello');
    assert.match(message.header('Received')!, /^from client\.example .*id 000000000016A018/);
    assert.equal(message.bodyBytes.toString(), 'Hello Alice,\n\nthis is a plain message.\n-- \nBob\n');
  });

  it('parses through postal-mime for reading', async () => {
    const email = await (await CourierMessage.open(join(spoolFixtures, 'D-plain'))).parse();
    assert.equal(email.subject, 'Hello');
    assert.equal(email.from?.address, 'bob@sender.example');
    assert.equal(email.messageId, '<plain-1@sender.example>');
  });

  it('reads a message with malformed UTF-8 and binary bytes without throwing', async () => {
    const message = await CourierMessage.open(join(spoolFixtures, 'D-malformed-utf8'));
    assert.equal(message.headers().length, 5);
    assert.match(message.header('Subject')!, /^Gr\uFFFD/);
    const email = await message.parse();
    assert.equal(email.from?.name, 'Jörg');
    assert.ok(email.text?.includes('Binary'));
  });

  it('handles a message with no body and no final newline', () => {
    const split = splitMessage(Buffer.from('Subject: x\nX-A: y'));
    assert.deepEqual(split.fields.map((f) => f.name), ['Subject', 'X-A']);
    assert.equal(split.separator.length, 0);
    const message = CourierMessage.fromBytes('unused', Buffer.from('Subject: x\nX-A: y'));
    message.addHeader('X-B', 'z');
    assert.equal(message.bytes.toString(), 'Subject: x\nX-A: y\nX-B: z\n\n');
  });

  it('refuses a data file over the size bound', async () => {
    await assert.rejects(CourierMessage.open(join(spoolFixtures, 'D-plain'), { maxBytes: 100 }), /larger than 100 bytes/);
  });
});

describe('CourierMessage: in-place rewrite', () => {
  const tmp = scratchPerSuite();

  it('adds a header and leaves every other byte identical, in the same inode', async () => {
    const [path] = await copySpool(tmp.dir, 'D-plain');
    const original = await readFile(path!);
    const inode = (await stat(path!)).ino;
    const message = await CourierMessage.open(path!);
    message.addHeader('X-Filtered-By', 'milterkit');
    assert.equal(message.modified, true);
    assert.equal(await message.save(), true);
    assert.equal(message.modified, false);
    const rewritten = await readFile(path!);
    const headerEnd = original.indexOf('\n\n') + 1;
    assert.deepEqual(rewritten, Buffer.concat([original.subarray(0, headerEnd), Buffer.from('X-Filtered-By: milterkit\n'), original.subarray(headerEnd)]));
    assert.equal((await stat(path!)).ino, inode);
  });

  it('keeps binary and malformed bytes of untouched parts', async () => {
    const [path] = await copySpool(tmp.dir, 'D-malformed-utf8');
    const original = await readFile(path!);
    const message = await CourierMessage.open(path!);
    message.insertHeader(1, 'X-Checked', 'yes');
    await message.save();
    const rewritten = await readFile(path!);
    const firstFieldEnd = original.indexOf('\nFrom:') + 1;
    assert.deepEqual(rewritten, Buffer.concat([original.subarray(0, firstFieldEnd), Buffer.from('X-Checked: yes\n'), original.subarray(firstFieldEnd)]));
  });

  it('inserts a first field after a leading whitespace line instead of absorbing it', () => {
    const message = CourierMessage.fromBytes('D-orphan', Buffer.from(' h\nFrom: a@example.org\n\nbody\n'));
    message.insertHeader(0, 'X-New', 'v');
    assert.equal(message.bytes.toString(), ' h\nX-New: v\nFrom: a@example.org\n\nbody\n');
    const reread = CourierMessage.fromBytes('D-orphan', message.bytes);
    assert.deepEqual(
      reread.headers().map((field) => [field.name, field.value]),
      [['', ''], ['X-New', 'v'], ['From', 'a@example.org']],
    );
  });

  it('changes and deletes the n-th occurrence of a field only', async () => {
    const path = join(tmp.dir, 'D-multi');
    await writeFile(path, 'A: 1\nB: first\nC: 3\nB: second\n  folded\n\nbody\n');
    const message = await CourierMessage.open(path);
    assert.equal(message.changeHeader('b', 2, 'changed'), true);
    assert.equal(message.changeHeader('B', 3, 'nope'), false);
    assert.equal(message.deleteHeader('C'), true);
    assert.equal(message.deleteHeader('C'), false);
    await message.save();
    assert.equal(await readFile(path, 'utf8'), 'A: 1\nB: first\nB: changed\n\nbody\n');
    assert.throws(() => message.changeHeader('B', 0, 'x'), RangeError);
    assert.equal(message.deleteAllHeaders('b'), 2);
  });

  it('replaces the body with LF line ends and a trailing newline', async () => {
    const path = join(tmp.dir, 'D-body');
    await writeFile(path, 'Subject: x\n\nold body\n');
    const message = await CourierMessage.open(path);
    message.replaceBody('new\r\nbody\rwithout newline');
    await message.save();
    assert.equal(await readFile(path, 'utf8'), 'Subject: x\n\nnew\nbody\nwithout newline\n');
  });

  it('shrinks the file when the new content is shorter', async () => {
    const path = join(tmp.dir, 'D-shrink');
    await writeFile(path, 'Subject: x\nX-Long: ' + 'y'.repeat(500) + '\n\nbody\n');
    const message = await CourierMessage.open(path);
    message.deleteHeader('X-Long');
    await message.save();
    assert.equal(await readFile(path, 'utf8'), 'Subject: x\n\nbody\n');
  });

  it('encodes non-ASCII values, folds multi-line values, refuses bad names', async () => {
    const message = CourierMessage.fromBytes('unused', Buffer.from('Subject: x\n\nbody\n'));
    message.addHeader('X-Note', 'Grüße');
    message.addHeader('X-Lines', 'one\r\ntwo');
    message.addHeader('X-Raw', 'Grüße', { raw8bit: true });
    assert.equal(message.bytes.toString(), `Subject: x\nX-Note: =?UTF-8?B?${Buffer.from('Grüße').toString('base64')}?=\nX-Lines: one\n\ttwo\nX-Raw: Grüße\n\nbody\n`);
    assert.throws(() => message.addHeader('Bad Name', 'x'), /invalid header field name/);
    assert.throws(() => message.addHeader('Bad:Name', 'x'), /invalid header field name/);
    assert.equal(encodeHeaderWords('plain'), 'plain');
  });

  it('does not write when nothing changed', async () => {
    const [path] = await copySpool(tmp.dir, 'D-auth');
    const before = await stat(path!);
    const message = await CourierMessage.open(path!);
    assert.equal(await message.save(), false);
    assert.equal((await stat(path!)).mtimeMs, before.mtimeMs);
  });
});
