import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FrameReader, FrameError, encodeFrame } from '../../src/protocol/index.js';

function collect(reader: FrameReader, chunks: Buffer[]): Array<[number, string]> {
  const frames: Array<[number, string]> = [];
  for (const chunk of chunks) reader.push(chunk, (code, payload) => frames.push([code, payload.toString('hex')]));
  return frames;
}

const stream = Buffer.concat([encodeFrame(0x43, Buffer.from('abc')), encodeFrame(0x41), encodeFrame(0x42, Buffer.alloc(300, 7))]);
const expected: Array<[number, string]> = [
  [0x43, '616263'],
  [0x41, ''],
  [0x42, '07'.repeat(300)],
];

test('several packets in one read are all delivered, in order', () => {
  assert.deepEqual(collect(new FrameReader(), [stream]), expected);
});

test('packets split at every possible byte boundary are reassembled', () => {
  for (let cut = 1; cut < stream.length; cut++) {
    assert.deepEqual(collect(new FrameReader(), [stream.subarray(0, cut), stream.subarray(cut)]), expected, `cut at ${cut}`);
  }
});

test('a read buffer passed whole with the length read: bytes past it are never looked at, at every split', () => {
  const streamed = 0x42;
  for (const reader of [() => new FrameReader(), () => new FrameReader(undefined, streamed)]) {
    for (let cut = 1; cut < stream.length; cut++) {
      // The rest of a reused read buffer holds stale bytes: a stray length there would be refused.
      const buffer = Buffer.alloc(stream.length + 64, 0xff);
      const frames: Array<[number, string]> = [];
      const pieces: Record<number, string> = {};
      const onFrame = (code: number, payload: Buffer, more: boolean): void => {
        if (code !== streamed) frames.push([code, payload.toString('hex')]);
        else {
          pieces[code] = (pieces[code] ?? '') + payload.toString('hex');
          if (!more) frames.push([code, pieces[code]!]);
        }
      };
      const r = reader();
      for (const piece of [stream.subarray(0, cut), stream.subarray(cut)]) {
        buffer.fill(0xff);
        piece.copy(buffer);
        r.push(buffer, onFrame, piece.length);
      }
      assert.deepEqual(frames, expected, `cut at ${cut}`);
    }
  }
});

test('a stream fed one byte at a time is reassembled', () => {
  const bytes = [...stream].map((b) => Buffer.from([b]));
  assert.deepEqual(collect(new FrameReader(), bytes), expected);
});

test('a payload inside one read is a view of that read, not a copy', () => {
  const packet = encodeFrame(0x42, Buffer.from('body'));
  let view: Buffer | undefined;
  new FrameReader().push(packet, (_code, payload) => (view = payload));
  assert.equal(view!.buffer, packet.buffer);
});

test('in place: the chosen commands come as the read and their bounds in it; the others as Buffers of their own', () => {
  const read = Buffer.alloc(64, 0x23);
  const packets = Buffer.concat([encodeFrame(0x4c, Buffer.from('Subject\0hi\0')), encodeFrame(0x42, Buffer.from('body')), encodeFrame(0x44, Buffer.from('Mi\0Q1\0'))]);
  packets.copy(read, 7);
  const chunk = read.subarray(7);
  const seen: Array<[number, Buffer, number, number]> = [];
  const reader = new FrameReader(1024, 0x42, { inPlaceCodes: [0x4c, 0x44] });
  for (let round = 0; round < 2; round++) reader.push(chunk, (code, payload, _more, start, end) => seen.push([code, payload, start, end]), packets.length);
  assert.deepEqual(seen.map(([code]) => code), [0x4c, 0x42, 0x44, 0x4c, 0x42, 0x44]);
  for (const [code, payload, start, end] of seen) {
    const text = code === 0x4c ? 'Subject\0hi\0' : code === 0x44 ? 'Mi\0Q1\0' : 'body';
    assert.equal(payload.toString('latin1', start, end), text);
    if (code === 0x42) {
      assert.deepEqual([start, end, payload.length], [0, 4, 4], 'a payload of its own');
      assert.equal(payload.buffer, read.buffer, 'a view of the read, not a copy');
      assert.equal(Object.getPrototypeOf(payload), Buffer.prototype);
    } else assert.equal(payload, chunk, 'the read itself');
  }
});

test('in place: packets split at every byte boundary of a reused read buffer come whole, streamed or assembled', () => {
  for (const streamed of [-1, 0x42]) {
    for (let cut = 1; cut < stream.length; cut++) {
      const reader = new FrameReader(undefined, streamed, { inPlaceCodes: [0x41, 0x42, 0x43] });
      const buffer = Buffer.alloc(stream.length + 64, 0xff);
      const frames: Array<[number, string]> = [];
      let pieces = '';
      const onFrame = (code: number, payload: Buffer, more: boolean, start: number, end: number): void => {
        pieces += payload.toString('hex', start, end);
        if (!more) {
          frames.push([code, pieces]);
          pieces = '';
        }
      };
      for (const piece of [stream.subarray(0, cut), stream.subarray(cut)]) {
        // The rest of a reused read buffer holds stale bytes, and the next read overwrites this one.
        buffer.fill(0xff);
        piece.copy(buffer);
        reader.push(buffer, onFrame, piece.length);
      }
      assert.deepEqual(frames, expected, `cut at ${cut}, streamed ${streamed}`);
    }
  }
});

test('in place: reads at different places of one memory, taken in turn, each give their own bytes', () => {
  // Two reads cut from one pool, as Node's small Buffers are: same memory, different offsets.
  const memory = Buffer.alloc(256, 0x23);
  const first = memory.subarray(16, 64);
  const second = memory.subarray(100, 160);
  encodeFrame(0x44, Buffer.from('Mi\0Q1\0')).copy(first);
  encodeFrame(0x44, Buffer.from('Ri\0Q2\0')).copy(second);
  const reader = new FrameReader(1024, -1, { inPlaceCodes: [0x44] });
  const seen: string[] = [];
  for (const read of [first, second, first, second]) reader.push(read, (_code, payload, _more, start, end) => seen.push(payload.toString('latin1', start, end)), 11);
  assert.deepEqual(seen, ['Mi\0Q1\0', 'Ri\0Q2\0', 'Mi\0Q1\0', 'Ri\0Q2\0']);
});

test('in place: an empty payload has equal bounds, inside one read or after a split header', () => {
  const packets = Buffer.concat([encodeFrame(0x54), encodeFrame(0x4e)]);
  for (let cut = 1; cut <= packets.length; cut++) {
    const reader = new FrameReader(1024, -1, { inPlaceCodes: [0x54, 0x4e] });
    const seen: Array<[number, number]> = [];
    for (const read of [packets.subarray(0, cut), packets.subarray(cut)]) {
      reader.push(read, (code, _payload, _more, start, end) => seen.push([code, end - start]));
    }
    assert.deepEqual(seen, [[0x54, 0], [0x4e, 0]], `cut at ${cut}`);
  }
});

test('length 0 is refused with EMPTY_FRAME, after delivering the packets before it', () => {
  const reader = new FrameReader();
  const frames: number[] = [];
  const bad = Buffer.concat([encodeFrame(0x41), Buffer.from([0, 0, 0, 0, 0x41])]);
  assert.throws(() => reader.push(bad, (code) => frames.push(code)), (e: unknown) => e instanceof FrameError && e.code === 'EMPTY_FRAME');
  assert.deepEqual(frames, [0x41]);
  assert.throws(() => reader.push(encodeFrame(0x41), () => {}), FrameError, 'no resynchronisation after an error');
});

test('a length above the cap is refused before any payload is buffered', () => {
  const reader = new FrameReader(1024);
  const header = Buffer.from([0, 0, 4, 2, 0x4c]); // payload 1025
  assert.throws(() => reader.push(header, () => {}), (e: unknown) => e instanceof FrameError && e.code === 'FRAME_TOO_LARGE');
  const huge = Buffer.from([0xff, 0xff, 0xff, 0xff, 0x4c]);
  assert.throws(() => new FrameReader().push(huge, () => {}), (e: unknown) => e instanceof FrameError && e.code === 'FRAME_TOO_LARGE');
});

test('the default cap accepts a 1 MiB payload (Postfix sends headers over 64 KiB)', () => {
  const big = encodeFrame(0x4c, Buffer.alloc(1024 * 1024, 0x61));
  let size = 0;
  new FrameReader().push(big, (_c, payload) => (size = payload.length));
  assert.equal(size, 1024 * 1024);
});

test('end() inside a packet reports TRUNCATED; end() between packets is fine', () => {
  const reader = new FrameReader();
  reader.push(encodeFrame(0x41), () => {});
  reader.end();
  const cut = new FrameReader();
  cut.push(encodeFrame(0x42, Buffer.from('abcdef')).subarray(0, 7), () => {});
  assert.equal(cut.buffered, 2);
  assert.throws(() => cut.end(), (e: unknown) => e instanceof FrameError && e.code === 'TRUNCATED');
  const header = new FrameReader();
  header.push(Buffer.from([0, 0]), () => {});
  assert.throws(() => header.end(), (e: unknown) => e instanceof FrameError && e.code === 'TRUNCATED');
});

test('a streamed command is handed out in pieces, as views of each read, never copied', () => {
  const body = Buffer.alloc(70_000, 0x62);
  const packet = encodeFrame(0x42, body);
  const reads = [packet.subarray(0, 65536), packet.subarray(65536, 65538), packet.subarray(65538)];
  const pieces: Array<[number, number, boolean, boolean]> = [];
  const reader = new FrameReader(undefined, 0x42);
  for (const read of reads) reader.push(read, (code, payload, more) => pieces.push([code, payload.length, more, payload.buffer === read.buffer]));
  assert.deepEqual(pieces, [
    [0x42, 65531, true, true],
    [0x42, 2, true, true],
    [0x42, 4467, false, true],
  ]);
  assert.equal(reader.buffered, 0);
});

test('other commands are still assembled whole while one is streamed', () => {
  const stream = Buffer.concat([encodeFrame(0x4c, Buffer.alloc(10, 1)), encodeFrame(0x42, Buffer.alloc(10, 2))]);
  const frames: Array<[number, number, boolean]> = [];
  const reader = new FrameReader(undefined, 0x42);
  for (const byte of stream) reader.push(Buffer.from([byte]), (code, payload, more) => frames.push([code, payload.length, more]));
  assert.deepEqual(frames.filter(([code]) => code === 0x4c), [[0x4c, 10, false]]);
  const body = frames.filter(([code]) => code === 0x42);
  assert.equal(body.reduce((n, [, len]) => n + len, 0), 10);
  assert.deepEqual(body.at(-1), [0x42, 1, false]);
  assert.ok(body.slice(0, -1).every(([, , more]) => more));
});

test('end() inside a streamed payload reports TRUNCATED', () => {
  const reader = new FrameReader(undefined, 0x42);
  reader.push(encodeFrame(0x42, Buffer.alloc(100)).subarray(0, 50), () => {});
  assert.throws(() => reader.end(), (e: unknown) => e instanceof FrameError && e.code === 'TRUNCATED');
});
