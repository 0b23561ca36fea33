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

test('whatever a filter receives as bytes is a plain Buffer, borrowed reads or not', async () => {
  for (const borrowed of [true, false]) {
    const kept: Kept = { bodies: [], rawHeaderValues: [], queueId: undefined, rawSender: undefined };
    const driver = new Driver({ filter: keepingFilter(kept) });
    const commands: Array<Array<MtaCommand<Bytes>>> = [
      [POSTFIX_V6],
      [connect(), { type: 'helo', name: 'client.example' }],
      [mail('<sender@example.org>'), rcpt(), { type: 'data' }, header('Subject', 'first')],
      [{ type: 'eoh' }, { type: 'body', chunk: Buffer.from('body text') }, { type: 'eob' }],
    ];
    if (borrowed) await feedBorrowed(driver, Buffer.alloc(64 * 1024), commands);
    else {
      for (const group of commands) {
        driver.session.receive(Buffer.concat(group.map((command) => encodeCommand(command))));
        await driver.settle();
      }
    }
    const received = [kept.rawSender!, ...kept.rawHeaderValues, ...kept.bodies];
    assert.equal(received.length, 3);
    for (const bytes of received) assert.equal(Object.getPrototypeOf(bytes), Buffer.prototype);
    assert.deepStrictEqual(kept.bodies, [Buffer.from('body text')]);
    assert.deepStrictEqual(kept.rawHeaderValues, [Buffer.from('first')]);
  }
});

test('borrowed reads: a header callback that reads its raw fields only after an await gets them intact, and a synchronous one too', async () => {
  const seen: string[] = [];
  class LateReader extends Milter {
    override async header(name: string) {
      if (name === 'Late') await new Promise((resolve) => setTimeout(resolve, 2));
      seen.push(`${name}: ${this.raw.map(String).join('|')}`);
    }
  }
  const driver = new Driver({ filter: LateReader });
  const readBuffer = Buffer.alloc(64 * 1024);
  const replies = await feedBorrowed(driver, readBuffer, [
    [POSTFIX_V6],
    [connect(), mail(), rcpt(), { type: 'data' }],
    [header('Late', 'read after an await'), header('Now', 'read at once')],
    [header('Late', 'again, alone in its read')],
  ]);
  assert.deepEqual(replies, ['optneg', ...Array<string>(7).fill('continue')]);
  assert.deepEqual(seen, ['Late: Late|read after an await', 'Now: Now|read at once', 'Late: Late|again, alone in its read']);
});

test('borrowed reads: MAIL and RCPT give their texts, and their raw argv read at once or after an await', async () => {
  const seen: string[] = [];
  class EnvelopeReader extends Milter {
    override async envfrom(address: string, args: string[]) {
      await new Promise((resolve) => setTimeout(resolve, 2));
      seen.push(`from ${address} [${args.join(' ')}] raw ${this.raw.map(String).join('|')}`);
    }
    override envrcpt(address: string, args: string[]) {
      seen.push(`rcpt ${address} [${args.join(' ')}] raw ${this.raw.map(String).join('|')}`);
    }
  }
  const driver = new Driver({ filter: EnvelopeReader });
  const readBuffer = Buffer.alloc(64 * 1024);
  const replies = await feedBorrowed(driver, readBuffer, [
    [POSTFIX_V6],
    [connect(), mail('<s@example.org>', 'SIZE=10', 'BODY=8BITMIME'), rcpt('<r@example.net>', 'NOTIFY=NEVER')],
    [rcpt('<é@example.net>', '')],
  ]);
  assert.deepEqual(replies, ['optneg', 'continue', 'continue', 'continue', 'continue']);
  assert.deepEqual(seen, [
    'from <s@example.org> [SIZE=10 BODY=8BITMIME] raw <s@example.org>|SIZE=10|BODY=8BITMIME',
    'rcpt <r@example.net> [NOTIFY=NEVER] raw <r@example.net>|NOTIFY=NEVER',
    'rcpt <é@example.net> [] raw <é@example.net>|',
  ]);
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

/** A filter that declares borrowedBody: it records whether each chunk lies in `readBuffer`, and copies its bytes. */
function borrowingFilter(readBuffer: Buffer, seen: { inPlace: boolean[]; bytes: Buffer[] }, options: { asyncHeader?: boolean } = {}): typeof Milter {
  return class Borrower extends Milter {
    static override options = { borrowedBody: true };
    override async header() {
      if (options.asyncHeader) await new Promise((resolve) => setTimeout(resolve, 2));
    }
    override body(chunk: Buffer) {
      seen.inPlace.push(chunk.buffer === readBuffer.buffer);
      seen.bytes.push(Buffer.from(chunk));
    }
  };
}

test('borrowed reads: a filter that declares borrowedBody gets body chunks where they were read, not copies', async () => {
  const readBuffer = Buffer.alloc(64 * 1024);
  const seen = { inPlace: [] as boolean[], bytes: [] as Buffer[] };
  const driver = new Driver({ filter: borrowingFilter(readBuffer, seen) });
  const first = Buffer.alloc(3000, 'a');
  const second = Buffer.alloc(1500, 'b');
  const replies = await feedBorrowed(driver, readBuffer, [
    [POSTFIX_V6],
    [connect(), mail(), rcpt(), { type: 'data' }, { type: 'eoh' }],
    [{ type: 'body', chunk: first }, { type: 'body', chunk: second }],
    [{ type: 'eob' }],
  ]);
  assert.deepEqual(replies.slice(-3), ['continue', 'continue', 'continue']);
  assert.deepEqual(seen.inPlace, [true, true]);
  assert.deepEqual(Buffer.concat(seen.bytes), Buffer.concat([first, second]));
});

test('borrowed reads: without borrowedBody every body chunk is the filter\'s own copy', async () => {
  const readBuffer = Buffer.alloc(64 * 1024);
  const seen = { inPlace: [] as boolean[], bytes: [] as Buffer[] };
  class Owner extends borrowingFilter(readBuffer, seen) {
    static override options = {};
  }
  const driver = new Driver({ filter: Owner });
  await feedBorrowed(driver, readBuffer, [[POSTFIX_V6], [connect(), mail(), rcpt(), { type: 'data' }, { type: 'eoh' }], [{ type: 'body', chunk: Buffer.alloc(100, 'c') }]]);
  assert.deepEqual(seen.inPlace, [false]);
});

test('borrowed reads: with borrowedBody, body packets queued behind an async callback are copies and arrive intact', async () => {
  const readBuffer = Buffer.alloc(64 * 1024);
  const seen = { inPlace: [] as boolean[], bytes: [] as Buffer[] };
  const driver = new Driver({ filter: borrowingFilter(readBuffer, seen, { asyncHeader: true }) });
  const body = Buffer.alloc(2000, 'd');
  // The MTA was told not to wait for header replies; the body arrives in the same read as the
  // header whose callback is still running, so it waits in the queue past this read.
  await feedBorrowed(driver, readBuffer, [
    [POSTFIX_V6],
    [connect(), mail(), rcpt(), { type: 'data' }],
    [header('Subject', 'x'), { type: 'eoh' }, { type: 'body', chunk: body }],
  ]);
  assert.deepEqual(seen.inPlace, [false]);
  assert.deepEqual(seen.bytes, [body]);
});
