import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Milter } from '../../src/index.js';
import { parseMessage, serializeMessage } from '../../src/mta/index.js';
import { testMilter } from '../../src/testing/index.js';

/** Keeps the bytes of every header value exactly as the filter received them. */
class HeaderBytes extends Milter {
  static seen: Array<[string, Buffer]> = [];
  override header(name: string) {
    HeaderBytes.seen.push([name, Buffer.from(this.raw[1]!)]);
    return 'continue' as const;
  }
}

const latin1 = (text: string) => Buffer.from(text, 'latin1');

// "Grüße" in Latin-1 (not UTF-8), raw bytes no charset decodes (0x80, 0xff), a Latin-1 folded
// continuation line, and a UTF-8 field for comparison.
const eml = Buffer.concat([
  latin1('From: J\xf6rg <joerg@example.org>\r\n'),
  latin1('To: bob@example.net\r\n'),
  latin1('Subject: Gr\xfc\xdfe\r\n'),
  latin1('X-Raw: \x80\x81\xfe\xff end\r\n'),
  latin1('X-Folded: caf\xe9\r\n\tna\xefve\r\n'),
  Buffer.from('X-Utf8: Grüße ☃\r\n', 'utf8'),
  latin1('\r\nbody\r\n'),
]);

for (const profile of ['postfix', 'sendmail'] as const) {
  test(`8-bit header bytes reach the filter as sent and are delivered as sent (${profile})`, async () => {
    HeaderBytes.seen = [];
    const report = await testMilter(HeaderBytes, eml, { profile });
    assert.equal(report.verdict, 'accept');
    const seen = new Map(HeaderBytes.seen.map(([name, value]) => [name, value.toString('latin1')]));
    assert.equal(seen.get('From'), 'J\xf6rg <joerg@example.org>');
    assert.equal(seen.get('Subject'), 'Gr\xfc\xdfe');
    assert.equal(seen.get('X-Raw'), '\x80\x81\xfe\xff end');
    assert.equal(seen.get('X-Folded'), 'caf\xe9\n\tna\xefve');
    assert.equal(Buffer.from(seen.get('X-Utf8')!, 'latin1').toString('utf8'), 'Grüße ☃');
    // The delivered copy carries the same bytes after the MTA's Received field.
    const delivered = report.raw!;
    const start = delivered.indexOf('From:');
    assert.ok(delivered.subarray(start).equals(eml), 'delivered header and body are the bytes given');
    // JSON carries the exact bytes of such a field in base64.
    const json = JSON.parse(JSON.stringify(report)) as { message: { headers: Array<{ name: string; rawBase64?: string }> } };
    assert.equal(Buffer.from(json.message.headers.find((field) => field.name === 'X-Raw')!.rawBase64!, 'base64').toString('latin1'), ' \x80\x81\xfe\xff end');
    assert.equal(json.message.headers.find((field) => field.name === 'X-Utf8')!.rawBase64, undefined);
  });
}

test('parsing keeps non-UTF-8 header bytes (shown as U+FFFD in the text) and writes them back unchanged', () => {
  const message = parseMessage(eml);
  const subject = message.headers.find((field) => field.name === 'Subject')!;
  assert.equal(subject.value, ' Gr\ufffd\ufffde');
  assert.deepEqual(subject.raw, latin1(' Gr\xfc\xdfe'));
  assert.equal(message.headers.find((field) => field.name === 'X-Utf8')!.raw, undefined, 'UTF-8 needs no raw copy');
  assert.ok(serializeMessage(message).equals(eml));
});
