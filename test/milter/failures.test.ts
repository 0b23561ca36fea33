import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Milter, type MilterOptions } from '../../src/index.js';
import { Driver, connect, header, lifecycleRecorder, macro, mail, rcpt, types } from './driver.js';

test('a callback that throws is logged and answered with tempfail by default', async () => {
  class Throws extends Milter {
    override envfrom(): never {
      throw new Error('boom');
    }
  }
  const d = new Driver({ filter: Throws });
  await d.negotiate();
  assert.deepEqual(types(await d.send(mail())), ['tempfail']);
  assert.ok(d.logger.has('error', /envfrom\(\) failed: boom; answering tempfail/));
  assert.equal(d.closedByMilter, false, 'the session goes on');
});

const errorVerdicts = [
  ['reject', 'reject'],
  ['accept', 'accept'],
  ['continue', 'continue'],
] as const;
for (const [configured, sent] of errorVerdicts) {
  test(`errorVerdict ${configured}: a rejected promise is answered ${sent}`, async () => {
    class Rejects extends Milter {
      override async envrcpt() {
        throw new Error('async boom');
      }
    }
    const d = new Driver({ filter: Rejects, errorVerdict: configured });
    await d.negotiate();
    assert.deepEqual(types(await d.send(rcpt())), [sent]);
  });
}

test('a hanging callback times out: tempfail is sent and later commands are served', async () => {
  class Hangs extends Milter {
    override envfrom() {
      return new Promise<never>(() => {});
    }
    override envrcpt() {
      return 'continue' as const;
    }
  }
  const d = new Driver({ filter: Hangs, callbackTimeout: 30 });
  await d.negotiate();
  assert.deepEqual(types(await d.send(mail(), { type: 'abort' }, mail('<x@y>'))), ['tempfail', 'tempfail']);
  assert.ok(d.logger.has('error', /did not finish within 30 ms/));
});

test('an eom that throws after queueing modifications sends none of them, only the error verdict', async () => {
  class Half extends Milter {
    override eom(): never {
      this.addHeader('X-Half', 'done');
      throw new Error('late failure');
    }
  }
  const d = new Driver({ filter: Half });
  await d.negotiate();
  assert.deepEqual(types(await d.send(mail(), { type: 'eob' })), ['continue', 'tempfail']);
});

test('a failure in a no-reply stage carries the error verdict to the next reply of the message', async () => {
  class NoReplyThrow extends Milter {
    static override options: MilterOptions = { noReply: ['header'] };
    override header(): never {
      throw new Error('header failed');
    }
    override eom() {
      return 'accept' as const;
    }
  }
  const d = new Driver({ filter: NoReplyThrow });
  await d.negotiate();
  assert.deepEqual(types(await d.send(mail(), header('A', 'b'), { type: 'eob' })), ['continue', 'tempfail']);
});

test('abort and close failures are logged without breaking the session', async () => {
  class BadCleanup extends Milter {
    override abort(): never {
      throw new Error('abort failed');
    }
    override close() {
      return Promise.reject(new Error('close failed'));
    }
  }
  const d = new Driver({ filter: BadCleanup });
  await d.negotiate();
  await d.send(mail(), { type: 'abort' }, { type: 'quit' });
  await d.session.closed;
  assert.ok(d.logger.has('error', /abort\(\) failed/) && d.logger.has('error', /close\(\) failed/));
  assert.ok(d.closedByMilter);
});

/** Malformed input: each ends the session cleanly, with a log line and no reply. */
const malformed: Array<[string, Buffer, RegExp]> = [
  ['length 0', Buffer.from([0, 0, 0, 0, 0x43]), /packet length 0/],
  ['a length above the cap', Buffer.from([0x7f, 0xff, 0xff, 0xff, 0x4c]), /exceeds the limit/],
  ['an unknown command', Buffer.from([0, 0, 0, 1, 0x5a]), /unknown command 'Z'/],
  ['HELO without NUL', Buffer.from([0, 0, 0, 2, 0x48, 0x61]), /HELO: payload is not NUL-terminated/],
  ['MAIL without its last NUL', Buffer.from([0, 0, 0, 5, 0x4d, 0x3c, 0x3e, 0, 0x61]), /MAIL: payload is not NUL-terminated/],
  ['an empty RCPT', Buffer.from([0, 0, 0, 1, 0x52]), /RCPT: payload is not NUL-terminated/],
  ['CONNECT with an unknown family', Buffer.from([0, 0, 0, 5, 0x43, 0x68, 0, 0x5a, 0]), /unknown address family/],
  ['a MACRO with an odd string count', Buffer.from([0, 0, 0, 4, 0x44, 0x43, 0x6a, 0]), /odd number of strings/],
  ['a MACRO for a stage no filter reads, with an odd string count', Buffer.from([0, 0, 0, 4, 0x44, 0x5a, 0x6a, 0]), /odd number of strings/],
  ['a MACRO that repeats the one before it but for its last byte', Buffer.from([0, 0, 0, 7, 0x44, 0x52, 0x69, 0, 0x51, 0x31, 0x31]), /MACRO: payload is not NUL-terminated/],
  ['DATA with a payload', Buffer.from([0, 0, 0, 2, 0x54, 0]), /DATA: unexpected payload/],
];
for (const [name, bytes, pattern] of malformed) {
  test(`malformed input ends the session: ${name}`, async () => {
    const events: string[] = [];
    const Watch = lifecycleRecorder(events);
    const d = new Driver({ filter: Watch, maxPayload: 1024 });
    await d.negotiate();
    // The stage's last packet, stored: a packet like it is checked all the same.
    await d.send(mail(), macro('R', { i: 'Q1' }), rcpt());
    assert.deepEqual(await d.send(bytes, connect()), []);
    await d.session.closed;
    assert.ok(d.closedByMilter);
    assert.ok(d.logger.has('error', pattern), JSON.stringify(d.logger.entries));
    assert.deepEqual(events, ['abort', 'close']);
  });
}

test('a header packet over 64 KiB (Postfix allows 100 KiB headers) is accepted under the default cap', async () => {
  const seen: number[] = [];
  class Big extends Milter {
    override header(_n: string, value: string) {
      seen.push(value.length);
    }
  }
  const d = new Driver({ filter: Big });
  await d.negotiate();
  assert.deepEqual(types(await d.send(header('X-Big', 'v'.repeat(100_000)))), ['continue']);
  assert.deepEqual(seen, [100_000]);
});

test('a stream cut inside a packet is logged and the session closes', async () => {
  const d = new Driver({ filter: Milter });
  await d.negotiate();
  d.session.receive(Buffer.from([0, 0, 0, 9, 0x48, 0x61]));
  d.session.end();
  await d.session.closed;
  assert.ok(d.logger.has('warn', /inside a packet/));
});

test('one failing connection does not affect another session', async () => {
  class Sometimes extends Milter {
    override envfrom(sender: string) {
      if (sender.includes('bad')) throw new Error('bad sender');
      return 'accept' as const;
    }
  }
  const bad = new Driver({ filter: Sometimes });
  const good = new Driver({ filter: Sometimes });
  await Promise.all([bad.negotiate(), good.negotiate()]);
  const [b, g] = await Promise.all([bad.send(mail('<bad@x>')), good.send(mail('<good@x>'))]);
  assert.deepEqual([types(b), types(g)], [['tempfail'], ['accept']]);
});

test('shadow mode: verdicts and modifications are logged as what would happen, and the MTA is told to continue', async () => {
  class Strict extends Milter {
    override envrcpt(recipient: string) {
      if (recipient.includes('bad')) {
        this.setReply('550', '5.1.1', 'no such user');
        return 'reject' as const;
      }
    }
    override eom() {
      this.addHeader('X-Spam', 'yes');
      this.replaceBody('gone\r\n');
      return 'discard' as const;
    }
  }
  const d = new Driver({ filter: Strict, shadow: true });
  await d.negotiate();
  assert.deepEqual(types(await d.send(mail(), rcpt('<bad@x>'), { type: 'eob' })), ['continue', 'continue', 'continue']);
  assert.ok(d.logger.has('info', /shadow: would reject at envrcpt/));
  assert.ok(d.logger.has('info', /shadow: would modify the message \(addHeader name="X-Spam" value="yes"; replaceBody 6 bytes\)/));
  assert.ok(d.logger.has('info', /shadow: would discard at eom/));
});
