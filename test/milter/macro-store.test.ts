/**
 * The macro store keeps each stage's latest packet in memory of the slot's own, reused by the next
 * packet of the stage. What a filter was given must never change under it, whatever the MTA
 * sends next or the transport does with its read buffer.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MacroStore } from '../../src/milter/macros.js';

/** A D packet: the stage byte, then name and value pairs, each NUL-terminated. */
function packet(stage: string, ...pairs: string[]): Buffer {
  return Buffer.concat([Buffer.from(stage, 'latin1'), ...pairs.map((text) => Buffer.from(`${text}\0`, 'latin1'))]);
}

/** `bytes` placed at `offset` of a larger buffer, as a read buffer holds a packet. */
function inReadBuffer(bytes: Buffer, offset = 17): { buffer: Buffer; start: number; end: number } {
  const buffer = Buffer.alloc(offset + bytes.length + 9, 0x55);
  bytes.copy(buffer, offset);
  return { buffer, start: offset, end: offset + bytes.length };
}

test('a stored packet is a copy: the read buffer may be overwritten at once', () => {
  const store = new MacroStore();
  const read = inReadBuffer(packet('R', '{rcpt_addr}', 'one@example.org'));
  store.store(read.buffer, read.start, read.end);
  read.buffer.fill(0x41);
  assert.equal(store.get('rcpt_addr'), 'one@example.org');
});

for (const size of [10, 100, 1000]) {
  test(`values a filter holds keep their bytes while later packets of the stage arrive (${size}-byte values)`, () => {
    const store = new MacroStore();
    const first = 'a'.repeat(size);
    const second = 'b'.repeat(size);
    const read = inReadBuffer(packet('R', '{rcpt_addr}', first));
    store.store(read.buffer, read.start, read.end);
    const held = store.getRaw('rcpt_addr')!;
    // Unread packets of the same stage, one of the same size.
    for (const value of [second, 'c'.repeat(size), second]) {
      const next = inReadBuffer(packet('R', '{rcpt_addr}', value));
      store.store(next.buffer, next.start, next.end);
    }
    assert.equal(held.toString('latin1'), first, 'the value handed out is unchanged');
    assert.equal(store.get('rcpt_addr'), second, 'the store answers with the latest packet');
  });
}

test('a packet differing from the last one only in its bytes, not its length, replaces it', () => {
  const store = new MacroStore();
  for (const value of ['qid-AAAA', 'qid-AAAA', 'qid-BBBB', 'qid-BBBB', 'qid-AAAB']) {
    const read = inReadBuffer(packet('L', 'i', value));
    store.store(read.buffer, read.start, read.end);
    assert.equal(store.get('i'), value);
  }
});

test('a longer packet than the slot held before, and an empty one, are stored whole', () => {
  const store = new MacroStore();
  const values = ['short', 'x'.repeat(300), 'mid'.repeat(30), 'y'];
  for (const value of values) {
    const read = inReadBuffer(packet('M', '{mail_addr}', value, '{mail_host}', 'example.net'));
    store.store(read.buffer, read.start, read.end);
    assert.equal(store.get('mail_addr'), value);
    assert.equal(store.get('{mail_host}'), 'example.net');
  }
  const empty = inReadBuffer(packet('M'));
  store.store(empty.buffer, empty.start, empty.end);
  assert.equal(store.get('mail_addr'), undefined, 'an empty MAIL packet leaves no MAIL macros');
});

test('a new message forgets the last message macros and keeps the connection ones', () => {
  const store = new MacroStore();
  for (const bytes of [packet('C', 'j', 'mx.example.org'), packet('M', '{mail_addr}', 'a@example.org'), packet('R', '{rcpt_addr}', 'b@example.org')]) {
    store.store(bytes);
  }
  store.endMessage();
  assert.equal(store.get('rcpt_addr'), 'b@example.org', 'readable until the next message starts');
  store.store(packet('M', '{mail_addr}', 'c@example.org'));
  assert.equal(store.get('rcpt_addr'), undefined);
  assert.equal(store.get('mail_addr'), 'c@example.org');
  assert.equal(store.get('j'), 'mx.example.org');
  assert.deepEqual(store.all(), { j: 'mx.example.org', mail_addr: 'c@example.org' });
});

test('a store released by a closed session serves the next one empty, and what a filter held keeps its bytes', () => {
  const first = MacroStore.forSession();
  first.store(packet('C', 'j', 'mx.first.example'));
  first.store(packet('M', '{mail_addr}', 'unread@example.org'));
  first.store(packet('R', '{rcpt_addr}', 'held@example.org'));
  const held = first.getRaw('rcpt_addr')!;
  MacroStore.release(first);

  const second = MacroStore.forSession();
  assert.equal(second, first, 'the released store is the one handed out next');
  assert.deepEqual(second.all(), {}, 'no macro of the closed session remains');
  const read = inReadBuffer(packet('R', '{rcpt_addr}', 'next@example.net'));
  second.store(read.buffer, read.start, read.end);
  assert.equal(second.get('rcpt_addr'), 'next@example.net');
  assert.equal(held.toString('latin1'), 'held@example.org', 'the value handed out before is unchanged');
});

test('the store a closed session reads is never handed to a new one', () => {
  MacroStore.release(MacroStore.none);
  assert.notEqual(MacroStore.forSession(), MacroStore.none);
  assert.deepEqual(MacroStore.none.all(), {});
});
