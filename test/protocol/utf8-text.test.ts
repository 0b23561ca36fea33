import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { utf8Text } from '../../src/protocol/bytes.js';

/** Byte strings with what UTF-8 decoding must get right: multi-byte text, invalid and cut sequences, NULs. */
const SAMPLES: Buffer[] = [
  Buffer.from('Subject line, plain ASCII'),
  Buffer.from('Grüße aus Köln — 東京 🎉', 'utf8'),
  Buffer.from([0x48, 0xff, 0xfe, 0x49, 0xc3, 0x28, 0xe2, 0x82, 0x4a, 0xf0, 0x9f, 0x98]),
  Buffer.from([0x00, 0x41, 0x00, 0xc3, 0xa9, 0x00]),
  Buffer.alloc(0),
];

/** Every range of every sample, as [sample, start, end]. */
function* ranges(): Generator<[Buffer, number, number]> {
  for (const bytes of SAMPLES) {
    for (let start = 0; start <= bytes.length; start++) {
      for (let end = start; end <= bytes.length; end++) yield [bytes, start, end];
    }
  }
}

test('utf8Text decodes every range exactly as Buffer#toString does, without calling it where Buffer has utf8Slice', () => {
  const toString = Buffer.prototype.toString;
  let calls = 0;
  Buffer.prototype.toString = function (this: Buffer, ...args: Parameters<Buffer['toString']>) {
    calls++;
    return toString.apply(this, args);
  };
  let texts: string[];
  try {
    texts = [...ranges()].map(([bytes, start, end]) => utf8Text(bytes, start, end));
  } finally {
    Buffer.prototype.toString = toString;
  }
  assert.equal(calls, 0);
  assert.deepEqual(texts, [...ranges()].map(([bytes, start, end]) => bytes.toString('utf8', start, end)));
});

test('utf8Text decodes a range of a larger buffer from its bounds alone', () => {
  const read = Buffer.concat([Buffer.from('X-Before\0'), Buffer.from('Wert mit Ümlaut', 'utf8'), Buffer.from('\0tail')]);
  const start = 'X-Before\0'.length;
  const end = read.indexOf(0, start);
  assert.equal(utf8Text(read, start, end), 'Wert mit Ümlaut');
});

test('where Buffer has no utf8Slice of its own, utf8Text falls back to toString with the same results', () => {
  // A fresh process, whose Buffer lacks the method while the module looks for it (toString needs
  // it back afterwards: Node's own toString calls it). The fallback shows as calls to toString.
  const script = `
    const utf8Slice = Buffer.prototype.utf8Slice;
    delete Buffer.prototype.utf8Slice;
    const { utf8Text } = await import(${JSON.stringify(new URL('../../src/protocol/bytes.js', import.meta.url).href)});
    Buffer.prototype.utf8Slice = utf8Slice;
    const toString = Buffer.prototype.toString;
    let calls = 0;
    Buffer.prototype.toString = function (...args) { calls++; return toString.apply(this, args); };
    const samples = ${JSON.stringify(SAMPLES.map((b) => [...b]))}.map((bytes) => Buffer.from(bytes));
    let checked = 0;
    for (const bytes of samples)
      for (let start = 0; start <= bytes.length; start++)
        for (let end = start; end <= bytes.length; end++) {
          const before = calls;
          if (utf8Text(bytes, start, end) !== toString.call(bytes, 'utf8', start, end)) throw new Error('differs at ' + start + '..' + end);
          if (calls !== before + 1) throw new Error('toString not used');
          checked++;
        }
    console.log(checked);
  `;
  const output = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  const expected = SAMPLES.reduce((sum, bytes) => sum + ((bytes.length + 1) * (bytes.length + 2)) / 2, 0);
  assert.equal(Number(output.trim()), expected);
});
