import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { Action } from '../../src/protocol/index.js';
import { DisabledActionError, Milter, StageError, ActionArgumentError, ReplyCodeError, type MilterOptions, type Verdict } from '../../src/index.js';
import { Driver, mail, rcpt, textOf, types } from './driver.js';

/** Runs `eom` on a fresh session offered `actions`; returns the end-of-message replies and the raw bytes. */
async function atEom(eom: (m: Milter) => unknown, options: MilterOptions = {}, actions = 0x1ff) {
  class F extends Milter {
    static override options = options;
    override eom() {
      return eom(this) as Verdict;
    }
  }
  const d = new Driver({ filter: F });
  await d.negotiate({ type: 'optneg', version: 6, actions, protocol: 0x1fffff });
  await d.send(mail(), rcpt());
  const before = d.written.length;
  const replies = await d.send({ type: 'eob' });
  return { replies, bytes: Buffer.concat(d.written.slice(before)), driver: d };
}

/** Runs `call` during eom and returns what it threw. */
async function caught(call: (m: Milter) => unknown, options: MilterOptions = {}, actions = 0x1ff): Promise<unknown> {
  let error: unknown;
  await atEom((m) => {
    try {
      call(m);
    } catch (err) {
      error = err;
    }
  }, options, actions);
  return error;
}

/** Each action: the call, and the exact packet bytes (hex) it puts on the wire before the final CONTINUE. */
const actionCases: Array<[string, (m: Milter) => unknown, string]> = [
  ['addHeader', (m) => m.addHeader('X-A', 'b'), '00000007 68 582d4100 6200'],
  ['insertHeader at 0', (m) => m.insertHeader(0, 'X-A', 'b'), '0000000b 69 00000000 582d4100 6200'],
  ['changeHeader', (m) => m.changeHeader('Subject', 2, 'new'), '00000011 6d 00000002 5375626a65637400 6e657700'],
  ['deleteHeader', (m) => m.deleteHeader('X-A', 3), '0000000a 6d 00000003 582d4100 00'],
  ['addRecipient', (m) => m.addRecipient('<c@d>'), '00000007 2b 3c6340643e00'],
  ['addRecipient with ESMTP args', (m) => m.addRecipient('<c@d>', 'NOTIFY=NEVER'), '00000014 32 3c6340643e00 4e4f544946593d4e4556455200'],
  ['deleteRecipient', (m) => m.deleteRecipient('<b@example.net>'), '00000011 2d 3c62406578616d706c652e6e65743e00'],
  ['changeFrom', (m) => m.changeFrom('<new@x>'), '00000009 65 3c6e657740783e00'],
  ['changeFrom with args', (m) => m.changeFrom('<new@x>', 'RET=HDRS'), '00000012 65 3c6e657740783e00 5245543d4844525300'],
  ['changeFrom to the null sender', (m) => m.changeFrom('<>'), '00000004 65 3c3e00'],
  ['quarantine', (m) => m.quarantine('held for review'), '00000011 71 68656c6420666f7220726576696577 00'],
  ['replaceBody', (m) => m.replaceBody('new\r\n'), '00000006 62 6e65770d0a'],
  ['replaceBody empty', (m) => m.replaceBody(''), '00000001 62'],
  ['a multi-line header value with CRLF is sent with LF only', (m) => m.addHeader('X-A', 'a\r\n\tb'), '0000000a 68 582d4100 610a096200'],
  ['8-bit header bytes pass through unchanged', (m) => m.addHeader('X-A', Buffer.from([0xe9, 0xff])), '00000008 68 582d4100 e9ff00'],
  // Both MTAs delete a header whose new value is empty; one space keeps it, with an empty value.
  ['changeHeader to an empty value keeps the header', (m) => m.changeHeader('X-A', 1, ''), '0000000b 6d 00000001 582d4100 2000'],
  ['addRecipient with ESMTP args as a list', (m) => m.addRecipient('<c@d>', ['NOTIFY=NEVER', 'RET=X']), '0000001a 32 3c6340643e00 4e4f544946593d4e45564552205245543d5800'],
  ['changeFrom with ESMTP args as a list', (m) => m.changeFrom('<new@x>', ['RET=HDRS']), '00000012 65 3c6e657740783e00 5245543d4844525300'],
  ['changeFrom with an empty list of args', (m) => m.changeFrom('<new@x>', []), '00000009 65 3c6e657740783e00'],
  // A line break followed by a non-blank character would start a header of its own (a Bcc:, say):
  // every further line is folded with a tab, and empty lines (the end of the headers) are dropped.
  ['addHeader folds a bare LF before a field', (m) => m.addHeader('X-A', 'a\nBcc: x'), '0000000f 68 582d4100 610a09 4263633a207800'],
  ['insertHeader folds a bare CR before a field', (m) => m.insertHeader(1, 'X-A', 'a\rBcc: x'), '00000013 69 00000001 582d4100 610a09 4263633a207800'],
  ['changeHeader folds CRLF and drops an empty line', (m) => m.changeHeader('X-A', 1, 'a\r\n\r\nBcc: x\n'), '00000013 6d 00000001 582d4100 610a09 4263633a207800'],
  ['folding works on bytes too', (m) => m.addHeader('X-A', Buffer.from('a\nBcc: x')), '0000000f 68 582d4100 610a09 4263633a207800'],
];

for (const [name, call, hex] of actionCases) {
  test(`action ${name}: exact bytes, then the final reply`, async () => {
    const { bytes } = await atEom(call);
    assert.equal(bytes.toString('hex'), hex.replace(/\s+/g, '') + '0000000163');
  });
}

test('modifications keep their call order, and body packets come together after them', async () => {
  const { replies } = await atEom((m) => {
    m.replaceBody('part one, ');
    m.addHeader('X-1', 'a');
    m.replaceBody(Buffer.from('part two'));
    m.deleteRecipient('<b@example.net>');
    return 'accept';
  });
  assert.deepEqual(types(replies), ['addHeader', 'delRcpt', 'replaceBody', 'accept']);
  assert.equal(textOf(replies[2]!).chunk, 'part one, part two');
});

test('a replacement body larger than 64 KiB goes out in chunks of at most 65535 bytes', async () => {
  const body = Buffer.alloc(200_000);
  for (let i = 0; i < body.length; i++) body[i] = i % 251;
  const { replies } = await atEom((m) => m.replaceBody(body));
  const chunks = replies.filter((r) => r.type === 'replaceBody').map((r) => (r.type === 'replaceBody' ? r.chunk : Buffer.alloc(0)));
  assert.deepEqual(chunks.map((c) => c.length), [65535, 65535, 65535, 3395]);
  assert.deepEqual(Buffer.concat(chunks), body);
});

test('replaceBody accepts a stream and an async iterable', async () => {
  async function* parts() {
    yield 'a\r\n';
    yield Buffer.from('b\r\n');
  }
  const { replies } = await atEom(async (m) => {
    m.replaceBody(Readable.from([Buffer.from('x'.repeat(70_000))]));
    m.replaceBody(parts());
  });
  const body = Buffer.concat(replies.flatMap((r) => (r.type === 'replaceBody' ? [r.chunk] : [])));
  assert.equal(body.length, 70_006);
  assert.equal(body.subarray(-6).toString(), 'a\r\nb\r\n');
  assert.equal(replies.at(-1)!.type, 'continue');
});

test('progress is sent at once during eom, before the modifications', async () => {
  const { replies } = await atEom(async (m) => {
    m.addHeader('X-A', 'b');
    m.progress();
    await new Promise((r) => setTimeout(r, 5));
  });
  assert.deepEqual(types(replies), ['progress', 'addHeader', 'continue']);
});

test('a slow eom gets automatic PROGRESS heartbeats', async () => {
  class Slow extends Milter {
    override async eom() {
      await new Promise((r) => setTimeout(r, 120));
    }
  }
  const d = new Driver({ filter: Slow, progressInterval: 25 });
  await d.negotiate();
  const replies = await d.send(mail(), { type: 'eob' });
  const kinds = types(replies);
  assert.equal(kinds.at(-1), 'continue');
  assert.ok(kinds.filter((k) => k === 'progress').length >= 2, kinds.join(','));
});

const disabledCases: Array<[string, (m: Milter) => unknown, number]> = [
  ['addHeader', (m) => m.addHeader('X', 'y'), 0x1ff & ~Action.ADDHDRS],
  ['changeHeader', (m) => m.changeHeader('X', 1, 'y'), 0x1ff & ~Action.CHGHDRS],
  ['replaceBody', (m) => m.replaceBody('x'), 0x1ff & ~Action.CHGBODY],
  ['addRecipient with args', (m) => m.addRecipient('<x@y>', 'NOTIFY=NEVER'), 0x1ff & ~Action.ADDRCPT_PAR],
  ['addRecipient', (m) => m.addRecipient('<x@y>'), 0x1ff & ~Action.ADDRCPT & ~Action.ADDRCPT_PAR],
  ['deleteRecipient', (m) => m.deleteRecipient('<x@y>'), 0x1ff & ~Action.DELRCPT],
  ['changeFrom', (m) => m.changeFrom('<x@y>'), 0x1ff & ~Action.CHGFROM],
  ['quarantine', (m) => m.quarantine('r'), 0x1ff & ~Action.QUARANTINE],
];
for (const [name, call, offered] of disabledCases) {
  test(`${name} throws DisabledActionError when the MTA did not grant it`, async () => {
    const error = await caught(call, {}, offered);
    assert.ok(error instanceof DisabledActionError, String(error));
  });
}

test('actions not declared in options.actions are disabled even if the MTA offers them', async () => {
  assert.ok((await caught((m) => m.replaceBody('x'), { actions: ['addHeader'] })) instanceof DisabledActionError);
});

test('actions outside eom throw StageError; so do actions after eom returned', async () => {
  const errors: unknown[] = [];
  let kept: Milter | undefined;
  class Early extends Milter {
    override envfrom() {
      try {
        this.addHeader('X', 'y');
      } catch (err) {
        errors.push(err);
      }
    }
    override eom() {
      kept = this;
    }
  }
  const d = new Driver({ filter: Early });
  await d.negotiate();
  await d.send(mail(), { type: 'eob' });
  assert.throws(() => kept!.addHeader('X', 'late'), StageError);
  assert.ok(errors[0] instanceof StageError && /only allowed during eom\(\) \(called during envfrom\)/.test((errors[0] as Error).message));
  assert.throws(() => new Milter().progress(), StageError, 'no connection at all');
});

const badArguments: Array<[string, (m: Milter) => unknown]> = [
  ['a header name with a colon', (m) => m.addHeader('X-A:', 'v')],
  ['an empty header name', (m) => m.addHeader('', 'v')],
  ['a NUL in a value', (m) => m.addHeader('X-A', 'a\0b')],
  ['changeHeader index 0', (m) => m.changeHeader('X-A', 0, 'v')],
  ['a negative insert index', (m) => m.insertHeader(-1, 'X-A', 'v')],
  ['an empty recipient', (m) => m.addRecipient('')],
  ['an empty quarantine reason', (m) => m.quarantine('')],
  ['a header over 64 KiB', (m) => m.addHeader('X-Big', 'x'.repeat(70_000))],
  ['a recipient over 64 KiB', (m) => m.addRecipient(`<${'x'.repeat(70_000)}@example.org>`)],
  ['a quarantine reason over 64 KiB', (m) => m.quarantine('r'.repeat(65_535))],
  ['an ESMTP argument list item with a space', (m) => m.addRecipient('<c@d>', ['NOTIFY=NEVER RET=X'])],
  ['an empty ESMTP argument list item', (m) => m.changeFrom('<c@d>', [''])],
  ['ESMTP arguments of the wrong type (JavaScript callers)', (m) => m.addRecipient('<c@d>', 42 as unknown as string)],
  ['an ESMTP argument list item of the wrong type', (m) => m.changeFrom('<c@d>', [1] as unknown as string[])],
  ['ESMTP arguments with a line break', (m) => m.changeFrom('<c@d>', 'RET=HDRS\r\nRCPT TO:<x@y>')],
];
for (const [name, call] of badArguments) {
  test(`ActionArgumentError for ${name}`, async () => {
    const error = await caught(call);
    assert.ok(error instanceof ActionArgumentError, String(error));
  });
}

test('setReply replaces the plain reject with a y packet (one-shot, exact bytes)', async () => {
  const { bytes, replies } = await atEom((m) => {
    m.setReply('550', '5.7.1', 'Go away');
    return 'reject';
  });
  assert.equal(bytes.toString('latin1'), '\0\0\0\x13y550 5.7.1 Go away\0');
  assert.equal(replies.length, 1);
});

test('multi-line setReply and 421 tempfail', async () => {
  const { replies } = await atEom((m) => {
    m.setReply('421', '4.7.0', 'line one', 'line two');
    return 'tempfail';
  });
  assert.deepEqual(replies.map(textOf), [{ type: 'replyCode', text: '421-4.7.0 line one\r\n421 4.7.0 line two' }]);
});

test('a custom reply whose class does not match the verdict is dropped for the plain verdict, with a warning', async () => {
  const { replies, driver } = await atEom((m) => {
    m.setReply('550', '5.7.1', 'permanent');
    return 'tempfail';
  });
  assert.deepEqual(types(replies), ['tempfail']);
  assert.ok(driver.logger.has('warn', /does not match verdict tempfail/));
});

test('a custom reply set earlier is only used by the reply it precedes', async () => {
  class F extends Milter {
    override envfrom() {
      this.setReply('550', '5.1.0', 'not used: continue follows');
    }
    override envrcpt() {
      return 'reject' as const;
    }
  }
  const d = new Driver({ filter: F });
  await d.negotiate();
  assert.deepEqual(types(await d.send(mail(), rcpt())), ['continue', 'reject']);
});

test('setReply validates at the call: bad codes throw ReplyCodeError', async () => {
  const errors: unknown[] = [];
  await atEom((m) => {
    for (const args of [['250'], ['550', '4.1.1'], ['550', '5.1.1', 'a\nb']] as const) {
      try {
        m.setReply(...(args as unknown as [string, string?, ...string[]]));
      } catch (err) {
        errors.push(err);
      }
    }
  });
  assert.equal(errors.length, 3);
  assert.ok(errors.every((e) => e instanceof ReplyCodeError));
});

test('macro lookup: single-letter names with and without braces, long names, later stages first', async () => {
  const seen: Array<string | undefined> = [];
  class F extends Milter {
    override envrcpt() {
      seen.push(this.macro('i'), this.macro('{i}'), this.macro('{daemon_name}'), this.macro('daemon_name'), this.macro('nope'));
    }
  }
  const d = new Driver({ filter: F });
  await d.negotiate();
  await d.send(
    { type: 'macro', stage: 0x43, macros: [['{daemon_name}', 'smtpd'], ['i', 'from-connect']] },
    { type: 'macro', stage: 0x52, macros: [['{i}', 'Q123']] },
    rcpt(),
  );
  assert.deepEqual(seen, ['Q123', 'Q123', 'smtpd', 'smtpd', undefined]);
});
