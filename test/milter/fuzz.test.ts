/**
 * Bad input never hurts: mutated Postfix conversations (flipped bytes, cut and spliced streams,
 * random read boundaries) are fed to sessions running a filter that uses every callback and
 * action. Whatever arrives, the session must not throw to its transport, must not write after it
 * closed, and must end cleanly at EOF. The generator is seeded, so a failure replays exactly.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeCommand, type Bytes, type MtaCommand } from '../../src/protocol/index.js';
import { Milter, type MilterOptions } from '../../src/index.js';
import { MilterSession } from '../../src/milter/session.js';
import { silentLogger } from '../../src/log.js';
import { seededRandom } from '../fuzz/engine.js';
import { POSTFIX_V6, connect, header, macro, mail, rcpt } from './driver.js';

class Busy extends Milter {
  static override options: MilterOptions = { noReply: ['header'], skip: true, macros: { eom: ['i'] } };
  override connect() {}
  override helo() {}
  override envfrom(sender: string) {
    return sender.length % 7 === 0 ? ('reject' as const) : undefined;
  }
  override envrcpt() {}
  override data() {}
  override header() {}
  override eoh() {}
  override async body(chunk: Buffer) {
    return chunk.length % 5 === 0 ? ('skip' as const) : undefined;
  }
  override async eom() {
    this.addHeader('X-Fuzz', this.macro('i') ?? 'none');
    this.changeHeader('Subject', 1, 'changed');
    this.replaceBody('new body\r\n');
    this.setReply('550', '5.7.1', 'fuzz');
    return 'continue' as const;
  }
  override unknown() {}
}

const conversation: Buffer = Buffer.concat(
  ([
    POSTFIX_V6,
    macro('C', { j: 'mx' }),
    connect(),
    { type: 'helo', name: 'client' },
    macro('M', { i: 'Q1' }),
    mail(),
    rcpt(),
    { type: 'data' },
    header('Subject', 'hello'),
    header('X-A', Buffer.from([0xff, 0x01])),
    { type: 'eoh' },
    { type: 'body', chunk: Buffer.alloc(3000, 0x61) },
    { type: 'eob' },
    { type: 'abort' },
    { type: 'unknown', line: 'XYZZY' },
    { type: 'quitNc' },
    connect('2001:db8::1'),
    mail('<b@c>'),
    { type: 'quit' },
  ] as Array<MtaCommand<Bytes>>).map((c) => encodeCommand(c)),
);

function mutate(random: () => number): Buffer {
  const bytes = Buffer.from(conversation);
  const kind = Math.floor(random() * 4);
  if (kind === 0) {
    for (let i = 0, n = 1 + Math.floor(random() * 8); i < n; i++) bytes[Math.floor(random() * bytes.length)] = Math.floor(random() * 256);
    return bytes;
  }
  if (kind === 1) return bytes.subarray(0, Math.floor(random() * bytes.length));
  if (kind === 2) {
    const a = Math.floor(random() * bytes.length);
    const b = Math.floor(random() * bytes.length);
    return Buffer.concat([bytes.subarray(0, Math.min(a, b)), bytes.subarray(Math.max(a, b))]);
  }
  const at = Math.floor(random() * bytes.length);
  return Buffer.concat([bytes.subarray(0, at), Buffer.from(Array.from({ length: 1 + Math.floor(random() * 16) }, () => Math.floor(random() * 256))), bytes.subarray(at)]);
}

test('mutated conversations never throw, never write after close, and always end', async () => {
  const random = seededRandom(20261122);
  for (let round = 0; round < 400; round++) {
    const input = mutate(random);
    let closed = false;
    let writesAfterClose = 0;
    const session = new MilterSession(
      { filter: Busy, logger: silentLogger, maxPayload: 64 * 1024, callbackTimeout: 1000 },
      {
        write: () => {
          if (closed) writesAfterClose++;
        },
        close: () => {
          closed = true;
        },
      },
    );
    let offset = 0;
    while (offset < input.length) {
      const size = 1 + Math.floor(random() * 200);
      assert.doesNotThrow(() => session.receive(input.subarray(offset, offset + size)), `round ${round}`);
      offset += size;
      if (random() < 0.1) await new Promise((r) => setImmediate(r));
    }
    session.end();
    await session.closed;
    assert.ok(closed, `round ${round}: the transport was closed`);
    assert.equal(writesAfterClose, 0, `round ${round}: nothing written after close`);
  }
});
