/**
 * What a filter or a peer gets wrong must fail only the connection or the callback concerned:
 * throwing constructors, filters from another copy of milterkit, wrong return values, and input
 * arriving after the session closed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeCommand } from '../../src/protocol/index.js';
import { Milter, MilterServer, type MilterFilter } from '../../src/index.js';
import { compileFilter } from '../../src/milter/filter.js';
import { Driver, MemoryLogger, POSTFIX_V6, connect, mail, rcpt, types } from './driver.js';
import { Wire } from '../server/wire.js';

class ThrowsInConstructor extends Milter {
  constructor() {
    super();
    throw new Error('no database');
  }
  override envfrom() {}
}

const failingFilters: Array<[string, MilterFilter]> = [
  ['a constructor that throws', ThrowsInConstructor],
  [
    'a factory that throws',
    () => {
      throw new Error('no database');
    },
  ],
];
for (const [name, filter] of failingFilters) {
  test(`${name} fails that connection only: the error verdict and a log line`, async () => {
    const d = new Driver({ filter });
    await d.negotiate();
    assert.deepEqual(types(await d.send(connect())), ['tempfail']);
    assert.ok(d.logger.has('error', /constructor\(\) failed: no database; answering tempfail/), JSON.stringify(d.logger.entries));
    assert.deepEqual(types(await d.send(mail(), { type: 'eob' })), ['tempfail', 'tempfail'], 'a message on it is never accepted by accident');

    const accepting = new Driver({ filter, errorVerdict: 'accept' });
    await accepting.negotiate();
    assert.deepEqual(types(await accepting.send(connect())), ['accept'], 'the configured verdict is used');
  });
}

test('the server survives a throwing constructor: every connection gets the error verdict, later ones too', async () => {
  const logger = new MemoryLogger();
  const server = new MilterServer({ filter: ThrowsInConstructor, socket: 'inet:0@127.0.0.1', logger });
  await server.listen();
  try {
    for (let i = 0; i < 2; i++) {
      const wire = await Wire.open({ port: server.port!, host: '127.0.0.1' });
      // A bound far above what an answer takes, so that a connection left unanswered fails the test.
      const unanswered = new Promise<never>((_, reject) => setTimeout(() => reject(new Error('no answer within 5 s')), 5000).unref());
      assert.deepEqual(types(await Promise.race([wire.exchange(2, POSTFIX_V6, connect()), unanswered])), ['optneg', 'tempfail']);
      wire.socket.destroy();
    }
    assert.ok(logger.has('error', /constructor\(\) failed: no database/));
  } finally {
    await server.close();
  }
});

test('a Milter subclass from a second copy of milterkit is served as a class, actions included', async () => {
  // A query string makes Node load the module a second time: another Milter class, as when the
  // command line and the filter each bring their own copy.
  const copy = (await import(new URL('../../src/milter/milter.js?second-copy', import.meta.url).href)) as typeof import('../../src/milter/milter.js');
  assert.notEqual(copy.Milter, Milter);
  class FromCopy extends copy.Milter {
    override envrcpt(recipient: string) {
      return recipient === '<bad@example.net>' ? ('reject' as const) : undefined;
    }
    override eom() {
      this.addHeader('X-Copy', 'yes');
    }
  }
  const d = new Driver({ filter: FromCopy as unknown as typeof Milter });
  await d.negotiate();
  assert.deepEqual(types(await d.send(mail(), rcpt('<bad@example.net>'), rcpt())), ['continue', 'reject', 'continue']);
  assert.deepEqual(types(await d.send({ type: 'eob' })), ['addHeader', 'continue']);
});

test('a class that does not extend Milter is refused when the filter is given, never called without new', () => {
  let called = false;
  class NotAFilter {
    constructor() {
      called = true;
    }
  }
  assert.throws(() => compileFilter(NotAFilter as unknown as typeof Milter), /the filter class NotAFilter does not extend Milter/);
  assert.equal(called, false);
});

/** Return values a JavaScript filter might give, the stage that returns them, and the replies to MAIL and end of message. */
const wrongReturns: Array<[string, 'envfrom' | 'eom', unknown, string[], RegExp]> = [
  ['an unknown verdict string', 'envfrom', 'progress', ['tempfail', 'continue'], /envfrom\(\) failed: returned 'progress', which is not a verdict/],
  ['a number, asynchronously', 'envfrom', Promise.resolve(42), ['tempfail', 'continue'], /envfrom\(\) failed: returned number, which is not a verdict/],
  ['shutdown, with the way to end the session', 'eom', 'shutdown', ['continue', 'tempfail'], /returned 'shutdown', which is not a verdict .*setReply\('421'/],
];
for (const [name, stage, value, expected, pattern] of wrongReturns) {
  test(`${name} returned at ${stage} is a filter failure: error verdict, log line, no modification sent`, async () => {
    class Wrong extends Milter {
      override envfrom() {
        return (stage === 'envfrom' ? value : undefined) as undefined;
      }
      override eom() {
        if (stage !== 'eom') return undefined;
        this.addHeader('X-Never', 'sent');
        return value as undefined;
      }
    }
    const d = new Driver({ filter: Wrong });
    await d.negotiate();
    assert.deepEqual(types(await d.send(mail(), { type: 'eob' })), expected);
    assert.ok(d.logger.has('error', pattern), JSON.stringify(d.logger.entries));
  });
}

/** Packets the codec refuses in the middle of a read: what follows them in that read. */
const fatalPackets: Array<[string, Buffer]> = [
  ['HELO without NUL', Buffer.from([0, 0, 0, 2, 0x48, 0x61])],
  ['an unknown command', Buffer.from([0, 0, 0, 1, 0x5a])],
  ['a MACRO with an odd string count', Buffer.from([0, 0, 0, 4, 0x44, 0x43, 0x6a, 0])],
];
for (const [name, bad] of fatalPackets) {
  test(`after ${name}, nothing more of the same read is dispatched and no callback runs after close`, async () => {
    const events: string[] = [];
    class Recorder extends Milter {
      override envfrom() {
        events.push('envfrom');
      }
      override envrcpt() {
        events.push('envrcpt');
      }
      override eom() {
        events.push('eom');
      }
      override abort() {
        events.push('abort');
      }
      override close() {
        events.push('close');
      }
    }
    const d = new Driver({ filter: Recorder });
    await d.negotiate();
    await d.send(mail());
    const before = d.written.length;
    await d.send(Buffer.concat([bad, encodeCommand(rcpt()), encodeCommand({ type: 'eob' })]));
    await d.session.closed;
    assert.deepEqual(events, ['envfrom', 'abort', 'close']);
    assert.equal(d.written.length, before, 'no reply after the fatal packet');
  });
}

/** How the connection ends while a body is streamed: forced (server closing) or as the transport reports it. */
for (const force of [true, false]) {
  test(`a streamed body replacement stops reading and never writes once the connection ended (${force ? 'forced' : 'transport closed'})`, async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let partsRead = 0;
    async function* body() {
      yield Buffer.alloc(70_000, 0x61);
      partsRead++;
      await gate;
      for (let i = 0; i < 5; i++) {
        partsRead++;
        yield Buffer.alloc(70_000, 0x62);
      }
    }
    class Streams extends Milter {
      override eom() {
        this.replaceBody(body());
      }
    }
    const d = new Driver({ filter: Streams });
    await d.negotiate();
    await d.send(mail());
    d.session.receive(encodeCommand({ type: 'eob' }));
    for (let i = 0; i < 50 && partsRead === 0; i++) await new Promise((r) => setImmediate(r));
    d.session.terminate('connection closed', force);
    const written = d.written.length;
    release();
    await d.session.closed;
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    assert.ok(d.closedByMilter);
    assert.equal(d.written.length, written, 'nothing written after the connection ended');
    assert.ok(partsRead <= 2, `the body stopped being read (${partsRead} parts read)`);
  });
}

for (const errorVerdict of ['accept', 'continue', 'tempfail'] as const) {
  test(`a replacement body stream that fails part way is never accepted (errorVerdict ${errorVerdict})`, async () => {
    async function* failing() {
      yield Buffer.alloc(70_000, 0x61);
      throw new Error('disk gone');
    }
    class F extends Milter {
      override eom() {
        this.replaceBody(failing());
      }
    }
    const d = new Driver({ filter: F, errorVerdict });
    await d.negotiate();
    await d.send(mail(), rcpt());
    const replies = await d.send({ type: 'eob' });
    assert.equal(replies.at(-1)!.type, 'tempfail', JSON.stringify(types(replies)));
    assert.ok(replies.some((r) => r.type === 'replaceBody'), 'part of the body went out first');
    assert.ok(d.logger.has('error', /replaceBody\(\) failed: disk gone/), JSON.stringify(d.logger.entries));
  });
}
