import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { MimeLimitError, scanMimeStructure, type MimeScanLimits } from '../../src/courier/helpers/mime-structure.js';
import { ZIP_SIGNATURES } from '../../src/courier/filters/zip-entries.js';
import { scratchPerSuite } from './support.js';

/** Builds a multipart body from parts given as [headers, body]. */
function multipart(boundary: string, parts: Array<[string, string]>, eol = '\n'): string {
  return parts.map(([headers, body]) => `--${boundary}${eol}${headers.replaceAll('\n', eol)}${eol}${eol}${body}${eol}`).join('') + `--${boundary}--${eol}`;
}

const zipHead = Buffer.concat([ZIP_SIGNATURES[0]!, Buffer.from('rest of an archive')]);

/** Messages and the structure the scan must report: [type, filename, depth] per part. */
const CASES: Array<{ what: string; message: string; parts: Array<[string, string | undefined, number]>; collected?: string[] }> = [
  {
    what: 'a plain text message',
    message: 'Subject: hi\n\n--not-a-boundary\nHello\n',
    parts: [['text/plain', undefined, 0]],
  },
  {
    what: 'nested multiparts, a name only in Content-Type, an RFC 2231 name with continuations',
    message:
      'Content-Type: multipart/mixed; boundary="outer"\n\npreamble\n' +
      multipart('outer', [
        ['Content-Type: multipart/alternative; boundary=inner', 'ignored\n' + multipart('inner', [['Content-Type: text/plain', 'plain'], ['Content-Type: text/html', '<p>html</p>']])],
        ['Content-Type: application/octet-stream; name="run.exe"', 'MZ'],
        ["Content-Type: application/pdf\nContent-Disposition: attachment;\n filename*0*=utf-8''R%C3%A9sum; filename*1=\"e.pdf\"", 'pdf'],
      ]) +
      'epilogue\n',
    parts: [
      ['multipart/mixed', undefined, 0],
      ['multipart/alternative', undefined, 1],
      ['text/plain', undefined, 2],
      ['text/html', undefined, 2],
      ['application/octet-stream', 'run.exe', 1],
      ['application/pdf', 'Résume.pdf', 1],
    ],
  },
  {
    what: 'an attached message with its own attachment, CRLF line ends, an RFC 2047 name',
    message:
      'Content-Type: multipart/mixed; boundary=b1\r\n\r\n' +
      multipart(
        'b1',
        [
          ['Content-Type: text/plain', 'see attached'],
          [
            'Content-Type: message/rfc822',
            'Subject: inner\r\nContent-Type: multipart/mixed; boundary=b2\r\n\r\n' +
              multipart('b2', [[`Content-Type: application/x-msdownload\nContent-Disposition: attachment; filename="=?UTF-8?B?${Buffer.from('März.scr').toString('base64')}?="`, 'MZ']], '\r\n'),
          ],
        ],
        '\r\n',
      ),
    parts: [
      ['multipart/mixed', undefined, 0],
      ['text/plain', undefined, 1],
      ['message/rfc822', undefined, 1],
      ['multipart/mixed', undefined, 2],
      ['application/x-msdownload', 'März.scr', 3],
    ],
  },
  {
    what: 'archives recognised by their first bytes, base64 or not, whatever their names',
    message:
      'Content-Type: multipart/mixed; boundary=z\n\n' +
      multipart('z', [
        ['Content-Type: application/octet-stream; name=a.bin\nContent-Transfer-Encoding: base64', zipHead.toString('base64').replace(/.{8}/g, '$&\n')],
        ['Content-Type: application/octet-stream; name=b.bin\nContent-Transfer-Encoding: base64', Buffer.from('not an archive at all').toString('base64')],
        ['Content-Type: application/zip; name=c.zip\nContent-Transfer-Encoding: 8bit', zipHead.toString('latin1')],
      ]),
    parts: [
      ['multipart/mixed', undefined, 0],
      ['application/octet-stream', 'a.bin', 1],
      ['application/octet-stream', 'b.bin', 1],
      ['application/zip', 'c.zip', 1],
    ],
    collected: ['a.bin', 'c.zip'],
  },
];

/** Messages past a bound, and the bound. */
const OVER_LIMITS: Array<{ what: string; message: string; limits: Partial<MimeScanLimits>; error: RegExp }> = [
  { what: 'too many parts', message: 'Content-Type: multipart/mixed; boundary=p\n\n' + multipart('p', Array.from({ length: 5 }, () => ['Content-Type: text/plain', 'x'] as [string, string])), limits: { maxParts: 4 }, error: /more than 4 MIME parts/ },
  { what: 'too deep', message: 'Content-Type: multipart/mixed; boundary=d1\n\n' + multipart('d1', [['Content-Type: multipart/mixed; boundary=d2', multipart('d2', [['Content-Type: text/plain', 'x']])]]), limits: { maxDepth: 1 }, error: /nested deeper than 1/ },
  { what: 'too large', message: `Subject: big\n\n${'x'.repeat(5000)}\n`, limits: { maxBytes: 4096 }, error: /larger than 4096 bytes/ },
  { what: 'an endless header', message: `Subject: ${'x'.repeat(5000)}\n\nbody\n`, limits: { maxHeaderBytes: 1024 }, error: /header block is larger than 1024 bytes/ },
];

describe('MIME structure scan', () => {
  const tmp = scratchPerSuite();
  let count = 0;
  async function file(content: string | Buffer): Promise<string> {
    const path = join(tmp.dir, `D-${++count}`);
    await writeFile(path, content);
    return path;
  }

  for (const { what, message, parts, collected } of CASES) {
    it(`reports ${what}`, async () => {
      const structure = await scanMimeStructure(await file(message), { collectPrefixes: ZIP_SIGNATURES });
      assert.deepEqual(structure.parts.map((p) => [p.contentType, p.filename, p.depth]), parts);
      assert.deepEqual(structure.collected.map((c) => c.part.filename), collected ?? []);
      for (const body of structure.collected) assert.deepEqual(body.bytes.subarray(0, zipHead.length), zipHead);
    });
  }

  for (const { what, message, limits, error } of OVER_LIMITS) {
    it(`refuses a message with ${what}`, async () => {
      await assert.rejects(scanMimeStructure(await file(message), { limits }), (e: Error) => e instanceof MimeLimitError && error.test(e.message));
    });
  }

  it('finds boundaries and names across read slices, after megabytes of long lines', async () => {
    // Lines of every length, so that boundaries and the part headers fall on slice edges somewhere.
    const filler = Array.from({ length: 400 }, (_, i) => '-'.repeat(i % 7) + 'y'.repeat((i * 37) % 1500)).join('\n');
    const parts: Array<[string, string]> = Array.from({ length: 12 }, (_, i) => [`Content-Type: application/octet-stream; name="f${i}.dat"`, filler]);
    const structure = await scanMimeStructure(await file('Content-Type: multipart/mixed; boundary="edge"\n\n' + multipart('edge', parts)));
    assert.deepEqual(
      structure.parts.slice(1).map((p) => p.filename),
      parts.map((_, i) => `f${i}.dat`),
    );
  });

  it('reads only regular files', async () => {
    await assert.rejects(scanMimeStructure(tmp.dir), /not a regular file/);
  });
});
