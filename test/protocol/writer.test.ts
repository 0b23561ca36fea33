import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PacketWriter } from '../../src/protocol/writer.js';

const hex = (s: string) => s.replace(/\s+/g, '');

test('PacketWriter fills in each packet length when the packet ends, packets back to back', () => {
  const writer = new PacketWriter(4);
  writer.begin(0x68).cstring('X-A').cstring(Buffer.from([0xe9])).end();
  writer.begin(0x63).end();
  writer.begin(0x69).uint32(7).uint16(0x0102).byte(0xff).end();
  assert.equal(writer.take().toString('hex'), hex('00000007 68 582d4100 e900  00000001 63  00000008 69 00000007 0102 ff'));
  assert.equal(writer.length, 0, 'take starts afresh');
});

test('PacketWriter grows past its initial size without losing bytes', () => {
  const writer = new PacketWriter(8);
  const big = Buffer.alloc(100_000, 0x61);
  writer.begin(0x62).bytes(big).end();
  const out = writer.take();
  assert.equal(out.readUInt32BE(0), 100_001);
  assert.deepEqual(out.subarray(5), big);
});

test('PacketWriter.take hands out the complete packets and keeps the one in progress', () => {
  const writer = new PacketWriter();
  writer.begin(0x63).end().begin(0x62).bytes('ab');
  assert.equal(writer.complete, 5);
  assert.equal(writer.take().toString('hex'), '0000000163');
  writer.bytes('c').end();
  assert.equal(writer.take().toString('hex'), hex('00000004 62 616263'));
});

test('PacketWriter refuses unbalanced begin and end', () => {
  const writer = new PacketWriter();
  assert.throws(() => writer.end(), /outside a packet/);
  writer.begin(0x63);
  assert.throws(() => writer.begin(0x63), /inside a packet/);
});

test('PacketWriter.copy gives exactly the packets and the writer is reused; reset drops a packet in progress', () => {
  const writer = new PacketWriter(16);
  const first = writer.begin(0x63).end().copy();
  assert.equal(first.toString('hex'), '0000000163');
  writer.begin(0x62).bytes('abc');
  writer.reset();
  assert.equal(writer.begin(0x61).end().copy().toString('hex'), '0000000161', 'nothing of the dropped packet remains');
});
