import { test } from 'node:test';
import assert from 'node:assert/strict';
import { headerName } from '../../src/milter/header-names.js';

/** A header packet's bytes, `name NUL value NUL`, at `offset` inside a larger buffer as a read leaves them. */
function packet(name: Buffer | string, offset = 0): { payload: Buffer; nameEnd: number } {
  const nameBytes = typeof name === 'string' ? Buffer.from(name, 'utf8') : name;
  const read = Buffer.alloc(offset + nameBytes.length + 8, 0x41);
  nameBytes.copy(read, offset);
  read[offset + nameBytes.length] = 0;
  return { payload: read.subarray(offset), nameEnd: nameBytes.length };
}

test('a name decodes as Buffer#toString does, seen once or many times, from any offset', () => {
  for (const name of ['Subject', 'X-Spam-Status', 'Received', 'Ümlaut-Header', 'a', '']) {
    for (const offset of [0, 3, 17]) {
      const { payload, nameEnd } = packet(name, offset);
      assert.equal(headerName(payload, 0, nameEnd), payload.toString('utf8', 0, nameEnd));
      assert.equal(headerName(payload, 0, nameEnd), name);
    }
  }
});

test('a name in place inside a read decodes from its bounds alone, whatever lies around it', () => {
  for (const name of ['Subject', 'Ümlaut-Header', 'X-' + 'n'.repeat(60)]) {
    for (const offset of [0, 5]) {
      const bytes = Buffer.from(name, 'utf8');
      const read = Buffer.concat([Buffer.alloc(offset, 0x53), bytes, Buffer.from('\0value\0')]);
      for (let round = 0; round < 2; round++) assert.equal(headerName(read, offset, offset + bytes.length), name);
    }
  }
});

test('a cached name is never returned for other bytes: same length, same slot or not', () => {
  // Many names of one length, so slots are shared and replaced; each must come back as itself.
  const names = Array.from({ length: 2000 }, (_, i) => `X-Name-${String(i).padStart(5, '0')}`);
  for (let round = 0; round < 3; round++) {
    for (const name of names) {
      const { payload, nameEnd } = packet(name, round);
      assert.equal(headerName(payload, 0, nameEnd), name);
    }
  }
});

test('a name whose bytes change after it was cached is decoded from its new bytes', () => {
  const { payload, nameEnd } = packet('X-Changing');
  assert.equal(headerName(payload, 0, nameEnd), 'X-Changing');
  payload[2] = 0x44; // the read buffer is reused: the same memory now holds another name
  assert.equal(headerName(payload, 0, nameEnd), 'X-Dhanging');
  assert.equal(headerName(packet('X-Changing').payload, 0, nameEnd), 'X-Changing');
});

test('invalid UTF-8 and long names decode exactly as Buffer#toString does', () => {
  const invalid = packet(Buffer.from([0x58, 0xff, 0xc3, 0x28, 0x2d, 0x41]));
  assert.equal(headerName(invalid.payload, 0, invalid.nameEnd), invalid.payload.toString('utf8', 0, invalid.nameEnd));
  assert.equal(headerName(invalid.payload, 0, invalid.nameEnd), invalid.payload.toString('utf8', 0, invalid.nameEnd));
  const long = 'X-' + 'Long'.repeat(40);
  const { payload, nameEnd } = packet(long);
  assert.equal(headerName(payload, 0, nameEnd), long);
  assert.equal(headerName(payload, 0, nameEnd), long);
});
