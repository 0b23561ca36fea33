/**
 * A transport that reuses one read buffer hands the session borrowed reads: whatever outlives a
 * read (body chunks a filter keeps, raw arguments, macros, packets queued behind an async
 * callback) must be the session's own copy, not a view of memory the next read overwrites.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeCommand, type Bytes, type MtaCommand } from '../../src/protocol/index.js';
import { Milter } from '../../src/milter/milter.js';
import { Driver, POSTFIX_V6, connect, header, macro, mail, rcpt, types } from './driver.js';

/** What the filter saw and kept, read back at end of message. */
interface Kept {
  bodies: Buffer[];
  rawHeaderValues: Buffer[];
  queueId: string | undefined;
  rawSender: Buffer | undefined;
}

function keepingFilter(kept: Kept): typeof Milter {
  return class Keeper extends Milter {
    override envfrom() {
      kept.rawSender = this.raw[0];
    }
    // Async: the headers after the first arrive while it runs and wait in the session's queue.
    override async header() {
      kept.rawHeaderValues.push(this.raw[1]!);
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    override body(chunk: Buffer) {
      kept.bodies.push(chunk);
    }
    override eom() {
      kept.queueId = this.macro('i');
    }
  };
}

/** Feeds each group of commands as one read into `readBuffer`, which is scribbled over afterwards. */
async function feedBorrowed(driver: Driver, readBuffer: Buffer, groups: Array<Array<MtaCommand<Bytes>>>): Promise<string[]> {
  const replies: string[] = [];
  for (const group of groups) {
    const bytes = Buffer.concat(group.map((command) => encodeCommand(command)));
    bytes.copy(readBuffer);
    driver.session.receive(readBuffer.subarray(0, bytes.length), true);
    readBuffer.fill(0x23);
    replies.push(...types(await driver.settle()));
  }
  return replies;
}

test('borrowed reads: body chunks, raw arguments, macros and queued packets a filter keeps survive the next reads', async () => {
  const kept: Kept = { bodies: [], rawHeaderValues: [], queueId: undefined, rawSender: undefined };
  const driver = new Driver({ filter: keepingFilter(kept) });
  const readBuffer = Buffer.alloc(64 * 1024);
  const first = Buffer.alloc(3000, 'a');
  const second = Buffer.alloc(1500, 'b');
  const replies = await feedBorrowed(driver, readBuffer, [
    [POSTFIX_V6],
    [connect(), { type: 'helo', name: 'client.example' }],
    [macro('M', { i: 'QUEUE1' }), mail('<sender@example.org>'), rcpt()],
    [{ type: 'data' }, header('Subject', 'first'), header('To', 'second'), header('From', 'third')],
    [{ type: 'eoh' }, { type: 'body', chunk: first }],
    [{ type: 'body', chunk: second }],
    [{ type: 'eob' }],
  ]);
  // CONNECT, HELO, MAIL, RCPT, DATA, three headers, EOH, two body packets, end of message.
  assert.deepEqual(replies, ['optneg', ...Array<string>(12).fill('continue')]);
  assert.equal(kept.queueId, 'QUEUE1');
  assert.equal(kept.rawSender?.toString(), '<sender@example.org>');
  assert.deepEqual(kept.rawHeaderValues.map(String), ['first', 'second', 'third']);
  assert.deepEqual(Buffer.concat(kept.bodies), Buffer.concat([first, second]));
});

test('borrowed reads: a body packet split across reads reaches the filter intact', async () => {
  const kept: Kept = { bodies: [], rawHeaderValues: [], queueId: undefined, rawSender: undefined };
  const driver = new Driver({ filter: keepingFilter(kept) });
  const readBuffer = Buffer.alloc(64 * 1024);
  await feedBorrowed(driver, readBuffer, [[POSTFIX_V6], [connect(), mail(), rcpt(), { type: 'data' }, { type: 'eoh' }]]);
  const body = Buffer.from(Array.from({ length: 20_000 }, (_, i) => 0x41 + (i % 26)));
  const packet = encodeCommand({ type: 'body', chunk: body });
  for (let offset = 0; offset < packet.length; offset += 7000) {
    const piece = packet.subarray(offset, offset + 7000);
    piece.copy(readBuffer);
    driver.session.receive(readBuffer.subarray(0, piece.length), true);
    readBuffer.fill(0x23);
  }
  assert.deepEqual(types(await driver.settle()), ['continue']);
  assert.deepEqual(Buffer.concat(kept.bodies), body);
});
