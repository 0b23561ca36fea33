import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  Command,
  Reply,
  decodeCommand,
  decodeHeaderFields,
  decodeReply,
  encodeCommand,
  encodeReply,
  MalformedPacketError,
  UnknownCommandError,
  checkMacros,
  UnknownReplyError,
  type MilterReply,
  type MtaCommand,
  type Bytes,
} from '../../src/protocol/index.js';

import { copyOf, cStringTexts, splitCStrings } from '../../src/protocol/bytes.js';
import { headerNameEnd } from '../../src/protocol/commands.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const frameOf = (packet: Buffer) => ({ code: packet[4]!, payload: packet.subarray(5) });

test('Postfix default OPTNEG packet decodes to version 6, actions 0x1FF, protocol 0x1FFFFF', () => {
  const packet = hex('0000000D 4F 00000006 000001FF 001FFFFF');
  const { code, payload } = frameOf(packet);
  assert.deepEqual(decodeCommand(code, payload), { type: 'optneg', version: 6, actions: 0x1ff, protocol: 0x1fffff });
  assert.deepEqual(encodeCommand({ type: 'optneg', version: 6, actions: 0x1ff, protocol: 0x1fffff }), packet);
});

test('a bare CONTINUE reply is 00 00 00 01 63', () => {
  assert.deepEqual(encodeReply({ type: 'continue' }), hex('00000001 63'));
});

/** Commands: exact bytes on the wire, and the decoded form with strings as text. */
const commandCases: Array<{ name: string; command: MtaCommand<Bytes>; bytes: string }> = [
  { name: 'CONNECT inet', command: { type: 'connect', hostname: 'mx.example', family: 'inet', port: 25, address: '192.0.2.1' }, bytes: '00000019 43 6d782e6578616d706c6500 34 0019 3139322e302e322e3100' },
  { name: 'CONNECT inet6 (Sendmail form)', command: { type: 'connect', hostname: '[x]', family: 'inet6', port: 1, address: 'IPv6:::1' }, bytes: '00000011 43 5b785d00 36 0001 495076363a3a3a3100' },
  { name: 'CONNECT unix', command: { type: 'connect', hostname: 'h', family: 'unix', port: 0, address: '/s' }, bytes: '00000009 43 6800 4c 0000 2f7300' },
  { name: 'CONNECT unknown family has no port or address', command: { type: 'connect', hostname: 'localhost', family: 'unknown' }, bytes: '0000000c 43 6c6f63616c686f737400 55' },
  { name: 'HELO', command: { type: 'helo', name: 'a.b' }, bytes: '00000005 48 612e6200' },
  { name: 'HELO empty', command: { type: 'helo', name: '' }, bytes: '00000002 48 00' },
  { name: 'MAIL with ESMTP args', command: { type: 'mail', args: ['<a@b>', 'SIZE=10'] }, bytes: '0000000f 4d 3c6140623e00 53495a453d313000' },
  { name: 'RCPT', command: { type: 'rcpt', args: ['<c@d>'] }, bytes: '00000007 52 3c6340643e00' },
  { name: 'MACRO with pairs', command: { type: 'macro', stage: Command.CONNECT, macros: [['j', 'mx'], ['{daemon_name}', 'smtpd']] }, bytes: '0000001b 44 43 6a00 6d7800 7b6461656d6f6e5f6e616d657d00 736d74706400' },
  { name: 'MACRO with no pairs', command: { type: 'macro', stage: Command.CONNECT, macros: [] }, bytes: '00000002 44 43' },
  { name: 'HEADER with folded 8-bit value', command: { type: 'header', name: 'Subject', value: Buffer.from('caf\xe9\n\tx', 'latin1') }, bytes: '00000011 4c 5375626a65637400 636166e90a097800' },
  { name: 'BODY keeps NUL and CR bytes', command: { type: 'body', chunk: Buffer.from([0x00, 0x0d, 0x41]) }, bytes: '00000004 42 000d41' },
  { name: 'EOB', command: { type: 'eob' }, bytes: '00000001 45' },
  { name: 'EOB with a final chunk', command: { type: 'eob', chunk: Buffer.from('x') }, bytes: '00000002 45 78' },
  { name: 'UNKNOWN', command: { type: 'unknown', line: 'XYZZY 1' }, bytes: '00000009 55 58595a5a59203100' },
  { name: 'DATA', command: { type: 'data' }, bytes: '00000001 54' },
  { name: 'EOH', command: { type: 'eoh' }, bytes: '00000001 4e' },
  { name: 'ABORT', command: { type: 'abort' }, bytes: '00000001 41' },
  { name: 'QUIT', command: { type: 'quit' }, bytes: '00000001 51' },
  { name: 'QUIT_NC', command: { type: 'quitNc' }, bytes: '00000001 4b' },
];

/** Replaces every string field by a Buffer so that encoder input compares with decoder output. */
function asBuffers<T>(value: T): T {
  if (typeof value === 'string') return Buffer.from(value) as T;
  if (Buffer.isBuffer(value)) return value;
  if (Array.isArray(value)) return value.map(asBuffers) as T;
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, k === 'type' || k === 'family' ? v : asBuffers(v)])) as T;
  }
  return value;
}

for (const c of commandCases) {
  test(`command ${c.name}: encodes to the exact bytes and decodes back`, () => {
    const packet = encodeCommand(c.command);
    assert.equal(packet.toString('hex'), c.bytes.replace(/\s+/g, ''));
    const { code, payload } = frameOf(packet);
    assert.deepEqual(decodeCommand(code, payload), asBuffers(c.command));
  });
}

const replyCases: Array<{ name: string; reply: MilterReply<Bytes>; bytes: string }> = [
  { name: 'ACCEPT', reply: { type: 'accept' }, bytes: '00000001 61' },
  { name: 'REJECT', reply: { type: 'reject' }, bytes: '00000001 72' },
  { name: 'TEMPFAIL', reply: { type: 'tempfail' }, bytes: '00000001 74' },
  { name: 'DISCARD', reply: { type: 'discard' }, bytes: '00000001 64' },
  { name: 'SKIP', reply: { type: 'skip' }, bytes: '00000001 73' },
  { name: 'PROGRESS', reply: { type: 'progress' }, bytes: '00000001 70' },
  { name: 'SHUTDOWN', reply: { type: 'shutdown' }, bytes: '00000001 34' },
  { name: 'CONN_FAIL', reply: { type: 'connFail' }, bytes: '00000001 66' },
  { name: 'REPLYCODE', reply: { type: 'replyCode', text: '550 5.7.1 no' }, bytes: '0000000e 79 35353020352e372e31206e6f00' },
  { name: 'ADDHEADER', reply: { type: 'addHeader', name: 'X-A', value: 'b' }, bytes: '00000007 68 582d4100 6200' },
  { name: 'INSHEADER', reply: { type: 'insertHeader', index: 0, name: 'X-A', value: 'b' }, bytes: '0000000b 69 00000000 582d4100 6200' },
  { name: 'CHGHEADER delete', reply: { type: 'changeHeader', index: 2, name: 'X-A', value: '' }, bytes: '0000000a 6d 00000002 582d4100 00' },
  { name: 'ADDRCPT', reply: { type: 'addRcpt', rcpt: '<a@b>' }, bytes: '00000007 2b 3c6140623e00' },
  { name: 'ADDRCPT_PAR with args', reply: { type: 'addRcptPar', rcpt: '<a@b>', args: 'NOTIFY=NEVER' }, bytes: '00000014 32 3c6140623e00 4e4f544946593d4e4556455200' },
  { name: 'ADDRCPT_PAR without args', reply: { type: 'addRcptPar', rcpt: '<a@b>' }, bytes: '00000007 32 3c6140623e00' },
  { name: 'DELRCPT', reply: { type: 'delRcpt', rcpt: '<a@b>' }, bytes: '00000007 2d 3c6140623e00' },
  { name: 'REPLBODY', reply: { type: 'replaceBody', chunk: Buffer.from('x\r\n') }, bytes: '00000004 62 780d0a' },
  { name: 'REPLBODY empty', reply: { type: 'replaceBody', chunk: Buffer.alloc(0) }, bytes: '00000001 62' },
  { name: 'CHGFROM with args', reply: { type: 'changeFrom', sender: '<a@b>', args: 'RET=HDRS' }, bytes: '00000010 65 3c6140623e00 5245543d4844525300' },
  { name: 'QUARANTINE', reply: { type: 'quarantine', reason: 'spam' }, bytes: '00000006 71 7370616d00' },
  { name: 'OPTNEG with macro lists', reply: { type: 'optneg', version: 6, actions: 0x101, protocol: 0x42, macros: { 0: 'j _', 5: '{i}' } }, bytes: '0000001d 4f 00000006 00000101 00000042 00000000 6a205f00 00000005 7b697d00' },
];

for (const c of replyCases) {
  test(`reply ${c.name}: encodes to the exact bytes and decodes back`, () => {
    const packet = encodeReply(c.reply);
    assert.equal(packet.toString('hex'), c.bytes.replace(/\s+/g, ''));
    const { code, payload } = frameOf(packet);
    const expected = c.reply.type === 'optneg' ? asBuffers(c.reply) : asBuffers(c.reply);
    assert.deepEqual(decodeReply(code, payload), expected);
  });
}

/** Malformed payloads the decoders must refuse. */
const malformedCommands: Array<[string, number, string]> = [
  ['OPTNEG shorter than 12 bytes', Command.OPTNEG, '000000060000'],
  ['CONNECT without family', Command.CONNECT, '6800'],
  ['CONNECT with an unknown family', Command.CONNECT, '6800 5a 0000 00'],
  ['CONNECT inet without a NUL after the address', Command.CONNECT, '6800 34 0019 31'],
  ['CONNECT inet without port', Command.CONNECT, '6800 34 00'],
  ['HELO without NUL', Command.HELO, '61'],
  ['HELO with two strings', Command.HELO, '610062 00'],
  ['HEADER with one string', Command.HEADER, '6100'],
  ['HEADER with an empty name', Command.HEADER, '00 6100'],
  ['HEADER empty', Command.HEADER, ''],
  ['HEADER without a final NUL', Command.HEADER, '6100 62'],
  ['HEADER with three strings', Command.HEADER, '6100 6200 6300'],
  ['HEADER with a NUL inside a long value', Command.HEADER, '6100' + '62'.repeat(300) + '00' + '63'.repeat(300) + '00'],
  ['HEADER with a NUL at the end of a long value', Command.HEADER, '6100' + '62'.repeat(300) + '0000'],
  ['MAIL without NUL', Command.MAIL, '3c3e'],
  ['MAIL empty', Command.MAIL, ''],
  ['MACRO empty', Command.MACRO, ''],
  ['MACRO with an odd string count', Command.MACRO, '43 6a00'],
  ['MACRO without a final NUL', Command.MACRO, '43 6a00 6d78'],
  ['ABORT with payload', Command.ABORT, '00'],
];
for (const [name, code, payload] of malformedCommands) {
  test(`decodeCommand refuses ${name}`, () => {
    assert.throws(() => decodeCommand(code, hex(payload)), MalformedPacketError);
    // The milter side checks macros without parsing them: it must refuse exactly the same.
    if (code === Command.MACRO) assert.throws(() => checkMacros(hex(payload)), MalformedPacketError);
    // The milter side splits headers without decodeCommand: the same refusals.
    if (code === Command.HEADER) assert.throws(() => decodeHeaderFields(hex(payload)), MalformedPacketError);
  });
}

test('checkMacros accepts what decodeCommand accepts', () => {
  for (const payload of ['43', '43 6a00 6d7800', '43 00 00']) {
    assert.doesNotThrow(() => decodeCommand(Command.MACRO, hex(payload)));
    assert.doesNotThrow(() => checkMacros(hex(payload)));
  }
});

test('cStringTexts decodes what splitCStrings cuts, and refuses what it refuses', () => {
  const payloads = ['<a@example.org>\0', '<a@example.org>\0SIZE=10\0BODY=8BITMIME\0', '\0', '\0\0', '<é@example.net>\0x\0'];
  for (const payload of payloads) {
    const bytes = Buffer.from(payload);
    assert.deepEqual(cStringTexts(bytes, 'MAIL'), splitCStrings(bytes, 'MAIL').map(String), JSON.stringify(payload));
  }
  const latin1 = Buffer.from([0x3c, 0xe9, 0x3e, 0]);
  assert.deepEqual(cStringTexts(latin1, 'RCPT'), ['<\ufffd>'], 'invalid UTF-8 reads as U+FFFD, as Buffer#toString gives it');
  for (const bad of ['', 'a', 'a\0b']) {
    assert.throws(() => cStringTexts(Buffer.from(bad), 'RCPT'), (e: unknown) => e instanceof MalformedPacketError && /RCPT: payload is not NUL-terminated/.test(e.message));
  }
});

/** Calls `read` on `payload` alone and on it in place inside a larger buffer: what it returns or throws. */
function alikeInPlace<T>(payload: Buffer, read: (bytes: Buffer, start?: number, end?: number) => T): void {
  const outcome = (f: () => T): unknown => {
    try {
      return f();
    } catch (err) {
      return err instanceof Error ? `${err.name}: ${err.message}` : err;
    }
  };
  // Around it: NULs and bytes that would pass for a terminator or a name if they were looked at.
  for (const fill of [0x00, 0x61]) {
    const around = Buffer.concat([Buffer.alloc(7, fill), payload, Buffer.alloc(9, fill)]);
    assert.deepEqual(outcome(() => read(around, 7, 7 + payload.length)), outcome(() => read(payload)), `${JSON.stringify(payload.toString('latin1'))} amid ${fill}`);
  }
}

test('the in-place readers give what they give for the payload alone, and refuse what they refuse', () => {
  const payloads = ['', 'a', '\0', 'a\0', 'Subject\0hi\0', '\0hi\0', 'Subject\0hi', 'Subject\0h\0i\0', 'X\0\0', 'Mi\0Q1\0', 'M\0', 'Mi\0', '<a@b>\0SIZE=1\0'];
  for (const text of payloads) {
    const payload = Buffer.from(text, 'latin1');
    // Number-returning readers are compared with indexes made relative to the payload.
    alikeInPlace(payload, (bytes, start = 0, end) => headerNameEnd(bytes, start, end) - start);
    alikeInPlace(payload, (bytes, start, end) => checkMacros(bytes, start, end));
    alikeInPlace(payload, (bytes, start, end) => cStringTexts(bytes, 'MAIL', start, end));
    alikeInPlace(payload, (bytes, start, end) => copyOf(bytes, start, end).toString('latin1'));
  }
});

test('copyOf copies short and long ranges alike, into memory of its own', () => {
  for (const size of [0, 1, 255, 256, 257, 4096]) {
    const source = Buffer.alloc(size + 10);
    for (let i = 0; i < source.length; i++) source[i] = (i * 7) & 0xff;
    const copy = copyOf(source, 5, 5 + size);
    assert.deepEqual(copy, source.subarray(5, 5 + size));
    source.fill(0);
    if (size > 0) assert.notDeepEqual(copy, source.subarray(5, 5 + size), 'the copy does not change with its source');
  }
});

test('decodeCommand names an unknown command byte', () => {
  assert.throws(() => decodeCommand(0x5a, Buffer.alloc(0)), (err: unknown) => err instanceof UnknownCommandError && err.code === 0x5a && /'Z'/.test(err.message));
});

const malformedReplies: Array<[string, number, string]> = [
  ['CONTINUE with payload', Reply.CONTINUE, '00'],
  ['ADDHEADER with a trailing byte', Reply.ADDHEADER, '6100620078'],
  ['CHGHEADER without index', Reply.CHGHEADER, '0000'],
  ['CHGFROM with three strings', Reply.CHGFROM, '610062006300'],
  ['OPTNEG with a truncated macro list', Reply.OPTNEG, '00000006 00000000 00000000 0000'],
  ['OPTNEG with an unknown macro stage', Reply.OPTNEG, '00000006 00000000 00000000 00000009 6100'],
];
for (const [name, code, payload] of malformedReplies) {
  test(`decodeReply refuses ${name}`, () => {
    assert.throws(() => decodeReply(code, hex(payload)), MalformedPacketError);
  });
}

test('decodeReply refuses SETSYMLIST and unknown bytes as packets', () => {
  assert.throws(() => decodeReply(Reply.SETSYMLIST, Buffer.alloc(0)), UnknownReplyError);
  assert.throws(() => decodeReply(0x21, Buffer.alloc(0)), UnknownReplyError);
});

test('decoded strings are views of the packet, so 8-bit bytes survive unchanged', () => {
  const raw = Buffer.from([0xff, 0xfe, 0x80]);
  const packet = encodeCommand({ type: 'header', name: 'X', value: raw });
  const decoded = decodeCommand(packet[4]!, packet.subarray(5));
  assert.equal(decoded.type, 'header');
  if (decoded.type === 'header') {
    assert.deepEqual(decoded.value, raw);
    assert.equal(decoded.value.buffer, packet.buffer);
  }
});

test('decodeHeaderFields splits headers with short and long values alike', () => {
  for (const value of ['', 'x', 'v'.repeat(255), 'v'.repeat(256), 'w'.repeat(5000)]) {
    const [name, decoded] = decodeHeaderFields(Buffer.from(`X-Name\0${value}\0`, 'latin1'));
    assert.equal(name.toString(), 'X-Name');
    assert.equal(decoded.toString(), value);
  }
});
