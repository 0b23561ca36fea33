/**
 * Valid starting points for the protocol targets: whole conversations as Postfix and Sendmail
 * send them, and every reply a milter can give, encoded by the codec.
 */
import { Command, Protocol, encodeCommand, encodeReply, type Bytes, type MilterReply, type MtaCommand } from '../../../src/protocol/index.js';

const encodeAll = (commands: ReadonlyArray<MtaCommand<Bytes>>): Buffer => Buffer.concat(commands.map((command) => encodeCommand(command)));

const macro = (code: number, macros: Record<string, string>): MtaCommand<Bytes> => ({ type: 'macro', stage: code, macros: Object.entries(macros) });

/** One message as Postfix 3.7 sends it (version 6, every protocol bit offered), then QUIT_NC and a second client. */
export const postfixConversation: Buffer = encodeAll([
  { type: 'optneg', version: 6, actions: 0x1ff, protocol: 0x1fffff },
  macro(Command.CONNECT, { j: 'mx.example.org', '{daemon_name}': 'mx', v: 'Postfix 3.7.11' }),
  { type: 'connect', hostname: 'mail.example.org', family: 'inet', address: '192.0.2.1', port: 4711 },
  macro(Command.HELO, { '{tls_version}': 'TLSv1.3' }),
  { type: 'helo', name: 'mail.example.org' },
  macro(Command.MAIL, { i: 'Q1', '{auth_authen}': 'alice' }),
  { type: 'mail', args: ['<a@example.org>', 'SIZE=120', 'BODY=8BITMIME'] },
  macro(Command.RCPT, { '{rcpt_addr}': 'b@example.net' }),
  { type: 'rcpt', args: ['<b@example.net>', 'NOTIFY=NEVER'] },
  { type: 'data' },
  { type: 'header', name: 'Subject', value: ' hello\n\tworld' },
  { type: 'header', name: 'X-8bit', value: Buffer.from([0x20, 0xc3, 0xa9, 0xff]) },
  { type: 'eoh' },
  { type: 'body', chunk: 'Hi Bob\r\n'.repeat(20) },
  macro(Command.BODYEOB, { i: 'Q1' }),
  { type: 'eob' },
  { type: 'abort' },
  { type: 'unknown', line: 'XYZZY 1' },
  { type: 'quitNc' },
  { type: 'connect', hostname: 'v6.example.org', family: 'inet6', address: '2001:db8::1', port: 25 },
  { type: 'mail', args: ['<>'] },
  { type: 'rcpt', args: ['<postmaster@example.net>'] },
  { type: 'header', name: 'From', value: 'x' },
  { type: 'eob' },
  { type: 'quit' },
]);

/** Sendmail 8.17 with an older milter in mind: version 2 offer, unix-socket client, no DATA. */
export const sendmailConversation: Buffer = encodeAll([
  { type: 'optneg', version: 2, actions: 0x3f, protocol: Protocol.NOHDRS },
  { type: 'connect', hostname: 'localhost', family: 'unix', address: '/var/run/client.sock', port: 0 },
  { type: 'helo', name: 'localhost' },
  { type: 'mail', args: ['<root@localhost>'] },
  { type: 'rcpt', args: ['<root@localhost>'] },
  { type: 'body', chunk: Buffer.alloc(300, 0x78) },
  { type: 'eob' },
  { type: 'connect', hostname: 'unknown', family: 'unknown' },
  { type: 'quit' },
]);

/** Every reply type once, as a milter's answers over a whole conversation would carry them. */
export const everyReply: ReadonlyArray<MilterReply<Bytes>> = [
  { type: 'optneg', version: 6, actions: 0x1ff, protocol: 0, macros: { 0: 'j {daemon_name}', 2: '{auth_authen}', 5: 'i' } },
  { type: 'continue' },
  { type: 'accept' },
  { type: 'reject' },
  { type: 'tempfail' },
  { type: 'discard' },
  { type: 'skip' },
  { type: 'progress' },
  { type: 'shutdown' },
  { type: 'connFail' },
  { type: 'replyCode', text: '550 5.7.1 no thanks' },
  { type: 'addHeader', name: 'X-Added', value: 'yes' },
  { type: 'insertHeader', index: 0, name: 'X-First', value: 'one\n\ttwo' },
  { type: 'changeHeader', index: 2, name: 'Subject', value: '' },
  { type: 'addRcpt', rcpt: '<c@example.net>' },
  { type: 'addRcptPar', rcpt: '<d@example.net>', args: 'NOTIFY=NEVER' },
  { type: 'delRcpt', rcpt: '<b@example.net>' },
  { type: 'replaceBody', chunk: 'new body\r\n' },
  { type: 'changeFrom', sender: '<bounce@example.org>', args: 'SIZE=10' },
  { type: 'quarantine', reason: 'held' },
];

export const everyReplyStream: Buffer = Buffer.concat(everyReply.map((reply) => encodeReply(reply)));

/** Words the mutator splices into protocol streams: command and reply letters with plausible lengths. */
export const protocolDictionary: readonly Buffer[] = [
  ...'ABCDEHKLMNOQRTU'.split('').map((letter) => Buffer.from([0, 0, 0, 1, letter.charCodeAt(0)])),
  ...'+-abcdefhijlmpqrsty'.split('').map((letter) => Buffer.from([0, 0, 0, 1, letter.charCodeAt(0)])),
  Buffer.from([0, 0, 0, 0]),
  Buffer.from([0xff, 0xff, 0xff, 0xff]),
  Buffer.from([0, 1, 0, 0]),
  Buffer.from('\0'),
  Buffer.from('\r\n'),
  Buffer.from('\n\t'),
  Buffer.from('{daemon_name}\0'),
  Buffer.from('IPv6:'),
  Buffer.from('550 5.7.1 '),
  Buffer.from('421 4.7.0 '),
  Buffer.from('%'),
];
