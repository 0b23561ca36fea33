import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Milter, type MilterOptions } from '../../src/index.js';
import { encodeCommand } from '../../src/protocol/index.js';
import { Driver, connect, header, macro, mail, rcpt, types, POSTFIX_V6 } from './driver.js';

/** Records every callback with its arguments, answering continue. */
class Recorder extends Milter {
  static override options: MilterOptions = { skip: true };
  static log: string[] = [];
  override connect(hostname: string, family: string, address?: string, port?: number) {
    Recorder.log.push(`connect ${hostname} ${family} ${address} ${port}`);
  }
  override helo(name: string) {
    Recorder.log.push(`helo ${name}`);
  }
  override envfrom(sender: string, args: string[]) {
    Recorder.log.push(`envfrom ${sender} ${args.join(',')} i=${this.macro('i')}`);
  }
  override envrcpt(recipient: string) {
    Recorder.log.push(`envrcpt ${recipient} rcpt_addr=${this.macro('{rcpt_addr}')}`);
  }
  override data() {
    Recorder.log.push('data');
  }
  override header(name: string, value: string) {
    Recorder.log.push(`header ${name}=${value}`);
  }
  override eoh() {
    Recorder.log.push('eoh');
  }
  override body(chunk: Buffer) {
    Recorder.log.push(`body ${chunk.length}`);
    return chunk.length > 10 ? ('skip' as const) : undefined;
  }
  override eom() {
    Recorder.log.push(`eom j=${this.macro('j')} i=${this.macro('{i}')} mail_addr=${this.macro('mail_addr')}`);
  }
  override abort() {
    Recorder.log.push('abort');
  }
  override close() {
    Recorder.log.push('close');
  }
  override unknown(command: string) {
    Recorder.log.push(`unknown ${command}`);
  }
}

async function recorder(): Promise<Driver> {
  Recorder.log = [];
  const d = new Driver({ filter: Recorder });
  await d.negotiate();
  return d;
}

const message = (id: string, subject: string) => [
  macro('M', { '{mail_addr}': `from-${id}@example.org` }),
  mail(`<from-${id}@example.org>`, 'SIZE=100'),
  macro('R', { '{rcpt_addr}': `to-${id}@example.net` }),
  rcpt(`<to-${id}@example.net>`),
  macro('T', { i: id }),
  { type: 'data' } as const,
  header('Subject', subject),
  { type: 'eoh' } as const,
  { type: 'body', chunk: 'hi\r\n' } as const,
  macro('E', { i: id }),
  { type: 'eob' } as const,
];

test('two messages on one connection with ABORT between (Postfix): connection state and macros survive, message macros do not leak', async () => {
  const d = await recorder();
  const replies = await d.send(
    macro('C', { j: 'mx.example' }),
    connect('IPv6:2001:db8::1'),
    { type: 'helo', name: 'client.example' },
    ...message('Q1', 'first'),
    { type: 'abort' },
    ...message('Q2', 'second'),
    { type: 'abort' },
    { type: 'abort' },
    { type: 'quit' },
  );
  assert.deepEqual(types(replies), Array(2 + 2 * 7).fill('continue'));
  assert.deepEqual(Recorder.log, [
    'connect client.example inet 2001:db8::1 4321',
    'helo client.example',
    'envfrom <from-Q1@example.org> SIZE=100 i=undefined',
    'envrcpt <to-Q1@example.net> rcpt_addr=to-Q1@example.net',
    'data',
    'header Subject=first',
    'eoh',
    'body 4',
    'eom j=mx.example i=Q1 mail_addr=from-Q1@example.org',
    'envfrom <from-Q2@example.org> SIZE=100 i=undefined',
    'envrcpt <to-Q2@example.net> rcpt_addr=to-Q2@example.net',
    'data',
    'header Subject=second',
    'eoh',
    'body 4',
    'eom j=mx.example i=Q2 mail_addr=from-Q2@example.org',
    'close',
  ]);
  assert.ok(d.closedByMilter, 'QUIT closes the connection');
});

test('ABORT mid-message (RSET) calls abort once, clears message macros, keeps connection macros', async () => {
  const d = await recorder();
  await d.send(macro('C', { j: 'mx.example' }), connect(), macro('M', { i: 'OLD' }), mail(), rcpt(), { type: 'abort' }, { type: 'abort' });
  assert.deepEqual(Recorder.log.slice(-2), ['envrcpt <b@example.net> rcpt_addr=undefined', 'abort']);
  await d.send(mail(), macro('E', {}), { type: 'eob' });
  assert.equal(Recorder.log.at(-1), 'eom j=mx.example i=undefined mail_addr=undefined');
});

test('ABORT with no message open, twice, calls no abort callback', async () => {
  const d = await recorder();
  assert.deepEqual(await d.send(connect(), { type: 'abort' }, { type: 'abort' }), [{ type: 'continue' }]);
  assert.deepEqual(Recorder.log, ['connect client.example inet 192.0.2.1 4321']);
});

test('re-EHLO in a message (Postfix sends ABORT, then HELO): helo is seen again, the old message aborted', async () => {
  const d = await recorder();
  await d.send(connect(), { type: 'helo', name: 'one' }, mail(), { type: 'abort' }, { type: 'helo', name: 'two' }, mail('<x@y>'));
  assert.deepEqual(Recorder.log.slice(1), ['helo one', 'envfrom <a@example.org>  i=undefined', 'abort', 'helo two', 'envfrom <x@y>  i=undefined']);
});

test('QUIT_NC starts a new connection on the same socket: close runs, macros are cleared, a new filter instance serves', async () => {
  const instances = new Set<Milter>();
  class Counting extends Milter {
    override connect() {
      instances.add(this);
    }
    override eom() {
      return this.macro('j') === undefined ? ('accept' as const) : ('reject' as const);
    }
  }
  const d = new Driver({ filter: Counting });
  await d.negotiate();
  await d.send(macro('C', { j: 'mx' }), connect(), { type: 'quitNc' });
  assert.equal(d.closedByMilter, false);
  const replies = await d.send(connect(), mail(), { type: 'eob' });
  assert.deepEqual(types(replies), ['continue', 'continue', 'accept']);
  assert.equal(instances.size, 2);
});

test('SKIP is sent from body when negotiated; EOB still follows', async () => {
  const d = await recorder();
  const replies = await d.send(connect(), mail(), rcpt(), { type: 'body', chunk: 'x'.repeat(20) }, { type: 'eob' });
  assert.deepEqual(types(replies), ['continue', 'continue', 'continue', 'skip', 'continue']);
});

test('SKIP returned where it is not allowed is turned into continue, with a warning', async () => {
  class BadSkip extends Milter {
    override envfrom() {
      return 'skip' as const;
    }
    override body() {
      return 'skip' as const;
    }
  }
  const d = new Driver({ filter: BadSkip });
  await d.negotiate();
  assert.deepEqual(types(await d.send(mail(), { type: 'body', chunk: 'x' })), ['continue', 'continue']);
  assert.ok(d.logger.has('warn', /skip/));
});

test('after a message-level verdict the message ends: a later ABORT calls no abort callback', async () => {
  class RejectMail extends Recorder {
    override envfrom() {
      return 'reject' as const;
    }
  }
  const r = new Driver({ filter: RejectMail });
  Recorder.log = [];
  await r.negotiate();
  assert.deepEqual(types(await r.send(mail(), { type: 'abort' })), ['reject']);
  assert.deepEqual(Recorder.log, []);
});

test('per-recipient reject keeps the message open; later recipients and EOM follow', async () => {
  class PerRcpt extends Milter {
    override envrcpt(recipient: string) {
      return recipient.includes('bad') ? ('reject' as const) : recipient.includes('later') ? ('tempfail' as const) : undefined;
    }
    override eom() {
      return 'accept' as const;
    }
  }
  const d = new Driver({ filter: PerRcpt });
  await d.negotiate();
  const replies = await d.send(mail(), rcpt('<bad@x>'), rcpt('<later@x>'), rcpt('<ok@x>'), { type: 'eob' });
  assert.deepEqual(types(replies), ['continue', 'reject', 'tempfail', 'continue', 'accept']);
});

test('UNKNOWN and macros for stages libmilter ignores (L, B, U) are handled without replies to D', async () => {
  const d = await recorder();
  const replies = await d.send(macro('U', {}), { type: 'unknown', line: 'XYZZY now' }, macro('L', { i: 'Q' }), macro('B', {}), macro('Z', { x: 'y' }));
  assert.deepEqual(types(replies), ['continue']);
  assert.deepEqual(Recorder.log, ['unknown XYZZY now']);
});

test('EOB carrying data is taken as a last body chunk, with a single reply', async () => {
  const d = await recorder();
  const replies = await d.send(mail(), { type: 'eob', chunk: 'tail' });
  assert.deepEqual(types(replies), ['continue', 'continue']);
  assert.deepEqual(Recorder.log.slice(-2), ['body 4', 'eom j=undefined i=undefined mail_addr=undefined']);
});

test('EOF in a message runs abort then close', async () => {
  const d = await recorder();
  await d.send(mail());
  d.session.end();
  await d.session.closed;
  assert.deepEqual(Recorder.log.slice(-2), ['abort', 'close']);
});

test('connect family forms: unix path, unknown family, bracketed and bare IPv6 addresses', async () => {
  const d = await recorder();
  await d.send(
    { type: 'connect', hostname: 'local', family: 'unix', port: 0, address: '/run/s' },
    { type: 'quitNc' },
    { type: 'connect', hostname: 'localhost', family: 'unknown' },
    { type: 'quitNc' },
    { type: 'connect', hostname: '[2001:db8::2]', family: 'inet6', port: 25, address: '[2001:db8::2]' },
    { type: 'quitNc' },
    { type: 'connect', hostname: 'h', family: 'inet6', port: 25, address: '2001:db8::3' },
  );
  assert.deepEqual(
    Recorder.log.filter((l) => l.startsWith('connect')),
    ['connect local unix /run/s 0', 'connect localhost unknown undefined undefined', 'connect [2001:db8::2] inet6 2001:db8::2 25', 'connect h inet6 2001:db8::3 25'],
  );
});

test('8-bit header values and addresses reach the filter as UTF-8 text with the raw bytes kept', async () => {
  const seen: Array<[string, Buffer]> = [];
  class Bytes8 extends Milter {
    override header(_name: string, value: string) {
      seen.push([value, this.raw[1]!]);
    }
  }
  const d = new Driver({ filter: Bytes8 });
  await d.negotiate();
  const latin1 = Buffer.from([0x63, 0x61, 0x66, 0xe9]);
  await d.send(header('Subject', latin1), header('Subject', 'caf\u00e9'));
  assert.deepEqual(seen[0]![1], latin1, 'raw bytes survive unchanged');
  assert.equal(seen[0]![0], 'caf\ufffd');
  assert.equal(seen[1]![0], 'café');
});

test('packets split across reads and several packets in one read give the same replies', async () => {
  const d = await recorder();
  const stream = Buffer.concat([connect(), mail(), rcpt()].map((c) => encodeCommand(c)));
  for (const byte of stream) d.session.receive(Buffer.from([byte]));
  assert.deepEqual(types(await d.settle()), ['continue', 'continue', 'continue']);
});

test('pipelined headers with NR_HDR and an async header callback are processed in order', async () => {
  const seen: string[] = [];
  class Slow extends Milter {
    static override options: MilterOptions = { noReply: ['header'] };
    override async header(name: string) {
      await new Promise((r) => setTimeout(r, name === 'A' ? 20 : 1));
      seen.push(name);
    }
    override eoh() {
      seen.push('eoh');
    }
  }
  const d = new Driver({ filter: Slow });
  await d.negotiate(POSTFIX_V6);
  const replies = await d.send(header('A', '1'), header('B', '2'), header('C', '3'), { type: 'eoh' });
  assert.deepEqual(seen, ['A', 'B', 'C', 'eoh']);
  assert.deepEqual(types(replies), ['continue']);
});

test('a body packet split across reads reaches body() as views of the reads, with one reply', async () => {
  const pieces: Buffer[] = [];
  class Views extends Milter {
    override body(chunk: Buffer) {
      pieces.push(chunk);
    }
  }
  const d = new Driver({ filter: Views });
  await d.negotiate();
  const body = Buffer.alloc(65535, 0x78);
  const packet = encodeCommand({ type: 'body', chunk: body });
  const first = packet.subarray(0, 40_000);
  d.session.receive(first);
  d.session.receive(packet.subarray(40_000));
  assert.deepEqual(types(await d.settle()), ['continue']);
  assert.deepEqual(pieces.map((p) => p.length), [39_995, 25_540]);
  assert.equal(pieces[0]!.buffer, first.buffer, 'no copy');
  assert.deepEqual(Buffer.concat(pieces), body);
});

test('the first piece verdict other than continue answers the packet; later pieces are not passed on', async () => {
  const calls: number[] = [];
  class SkipEarly extends Milter {
    static override options: MilterOptions = { skip: true };
    override async body(chunk: Buffer) {
      calls.push(chunk.length);
      return 'skip' as const;
    }
  }
  const d = new Driver({ filter: SkipEarly });
  await d.negotiate();
  const packet = encodeCommand({ type: 'body', chunk: Buffer.alloc(1000) });
  for (let i = 0; i < packet.length; i += 100) d.session.receive(packet.subarray(i, i + 100));
  assert.deepEqual(types(await d.settle()), ['skip']);
  assert.deepEqual(calls, [95]);
});

test('client addresses are bare and canonical, whatever form the MTA sent', async () => {
  const { bareAddress } = await import('../../src/milter/session.js');
  const forms: Array<[string, string]> = [
    ['IPv6:0:0:0:0:0:0:0:1', '::1'],
    ['IPv6:2001:DB8:0:0:0:0:0:1', '2001:db8::1'],
    ['ipv6:2001:db8::1', '2001:db8::1'],
    ['[2001:db8::1]', '2001:db8::1'],
    ['2001:db8::1', '2001:db8::1'],
    ['192.0.2.1', '192.0.2.1'],
    ['/run/socket', '/run/socket'],
  ];
  for (const [sent, seen] of forms) assert.equal(bareAddress(sent), seen, sent);
});

test('a closed session reads no macros, and the next connection starts without the last one’s', async () => {
  const seen: Array<string | undefined> = [];
  class MacroReader extends Milter {
    override connect() {
      seen.push(this.macro('j'));
    }
  }
  const first = new Driver({ filter: MacroReader });
  await first.negotiate();
  await first.send(macro('C', { j: 'mx.first.example' }), connect());
  assert.equal(first.session.macros.get('j'), 'mx.first.example');
  await first.send({ type: 'quit' });
  assert.equal(first.session.macros.get('j'), undefined, 'closed: its store went to later sessions');

  const second = new Driver({ filter: MacroReader });
  await second.negotiate();
  await second.send(connect());
  assert.deepEqual(seen, ['mx.first.example', undefined]);
});
