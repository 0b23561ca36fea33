/**
 * Commands from the MTA to the milter (`SMFIC_*`): typed form, decoder and encoder. The milter
 * side decodes them; the MTA side (client, test kit) encodes them.
 */
import { type Bytes, MalformedPacketError, splitCStrings, readCStrings } from './bytes.js';
import { Command, Family, Limits, codeName, type AddressFamily } from './constants.js';
import { PacketWriter } from './writer.js';

/** The SMTP client as described by a CONNECT command. */
export interface ConnectInfo<S = string> {
  hostname: S;
  family: AddressFamily;
  /** Client port; 0 for unix sockets, absent for the unknown family. */
  port?: number;
  /** Client address (IPv6 as sent: `IPv6:` prefixed, bracketed or bare), or a socket path. */
  address?: S;
}

/**
 * One MTA command. `S` is the type of string fields: `Buffer` when decoded (raw bytes, views of
 * the packet), {@link Bytes} when given to the encoder.
 */
export type MtaCommand<S = Buffer> =
  | { type: 'optneg'; version: number; actions: number; protocol: number }
  | { type: 'macro'; stage: number; macros: Array<[name: S, value: S]> }
  | ({ type: 'connect' } & ConnectInfo<S>)
  | { type: 'helo'; name: S }
  | { type: 'mail'; args: S[] }
  | { type: 'rcpt'; args: S[] }
  | { type: 'data' }
  | { type: 'header'; name: S; value: S }
  | { type: 'eoh' }
  | { type: 'body'; chunk: S }
  | { type: 'eob'; chunk?: S }
  | { type: 'unknown'; line: S }
  | { type: 'abort' }
  | { type: 'quit' }
  | { type: 'quitNc' };

/** The `type` of each command, by command byte. */
export const commandTypes: Readonly<Record<number, MtaCommand['type']>> = {
  [Command.OPTNEG]: 'optneg',
  [Command.MACRO]: 'macro',
  [Command.CONNECT]: 'connect',
  [Command.HELO]: 'helo',
  [Command.MAIL]: 'mail',
  [Command.RCPT]: 'rcpt',
  [Command.DATA]: 'data',
  [Command.HEADER]: 'header',
  [Command.EOH]: 'eoh',
  [Command.BODY]: 'body',
  [Command.BODYEOB]: 'eob',
  [Command.UNKNOWN]: 'unknown',
  [Command.ABORT]: 'abort',
  [Command.QUIT]: 'quit',
  [Command.QUIT_NC]: 'quitNc',
};

/** A command byte this library does not know. */
export class UnknownCommandError extends MalformedPacketError {
  constructor(readonly code: number) {
    super(`unknown command ${codeName(code)}`);
  }
}

const familyByCode: Readonly<Record<number, AddressFamily>> = {
  [Family.INET]: 'inet',
  [Family.INET6]: 'inet6',
  [Family.UNIX]: 'unix',
  [Family.UNKNOWN]: 'unknown',
};
const codeByFamily: Readonly<Record<AddressFamily, number>> = {
  inet: Family.INET,
  inet6: Family.INET6,
  unix: Family.UNIX,
  unknown: Family.UNKNOWN,
};

function expectEmpty(payload: Buffer, what: string): void {
  if (payload.length !== 0) throw new MalformedPacketError(`${what}: unexpected payload of ${payload.length} bytes`);
}

/** Decodes a CONNECT payload: `hostname\0 family [port u16 address\0]`. */
export function decodeConnect(payload: Buffer): ConnectInfo<Buffer> {
  const nul = payload.indexOf(0);
  if (nul < 0 || nul + 1 >= payload.length) throw new MalformedPacketError('CONNECT: missing hostname terminator or family');
  const hostname = payload.subarray(0, nul);
  const family = familyByCode[payload[nul + 1]!];
  if (family === undefined) throw new MalformedPacketError(`CONNECT: unknown address family ${codeName(payload[nul + 1]!)}`);
  if (family === 'unknown') return { hostname, family };
  const portAt = nul + 2;
  if (payload.length < portAt + 3 || payload[payload.length - 1] !== 0) {
    throw new MalformedPacketError('CONNECT: missing port or NUL-terminated address');
  }
  const address = payload.subarray(portAt + 2, payload.length - 1);
  if (address.includes(0)) throw new MalformedPacketError('CONNECT: address holds a NUL');
  return { hostname, family, port: payload.readUInt16BE(portAt), address };
}

/**
 * Checks the shape of a MACRO payload (a stage byte, then NUL-terminated name and value pairs)
 * without parsing it: the milter side keeps `D` packets raw and parses them only when a filter
 * reads a macro.
 * @param start where the payload starts in `bytes` (default 0)
 * @param end where it ends (default the end of `bytes`)
 * @throws MalformedPacketError
 */
export function checkMacros(bytes: Buffer, start = 0, end = bytes.length): void {
  if (end === start) throw new MalformedPacketError('MACRO: missing stage byte');
  if (end === start + 1) return;
  if (bytes[end - 1] !== 0) throw new MalformedPacketError('MACRO: payload is not NUL-terminated');
  // A loop, not Buffer#indexOf: macro packets are short, and each indexOf is a call into C++.
  let strings = 0;
  for (let i = start + 1; i < end; i++) if (bytes[i] === 0) strings++;
  if (strings % 2 !== 0) throw new MalformedPacketError('MACRO: odd number of strings');
}

/** Decodes a MACRO payload: `stage` then `name\0value\0` pairs (possibly none). */
export function decodeMacros(payload: Buffer): { stage: number; macros: Array<[Buffer, Buffer]> } {
  if (payload.length === 0) throw new MalformedPacketError('MACRO: missing stage byte');
  const stage = payload[0]!;
  const macros: Array<[Buffer, Buffer]> = [];
  if (payload.length > 1) {
    const parts = splitCStrings(payload.subarray(1), 'MACRO');
    if (parts.length % 2 !== 0) throw new MalformedPacketError('MACRO: odd number of strings');
    for (let i = 0; i < parts.length; i += 2) macros.push([parts[i]!, parts[i + 1]!]);
  }
  return { stage, macros };
}

/** Decodes an OPTNEG payload's fixed part; bytes after the 12th are ignored, as libmilter does. */
export function decodeOptneg(payload: Buffer): { version: number; actions: number; protocol: number } {
  if (payload.length < Limits.OPTLEN) throw new MalformedPacketError(`OPTNEG: ${payload.length} bytes, expected at least ${Limits.OPTLEN}`);
  return { version: payload.readUInt32BE(0), actions: payload.readUInt32BE(4), protocol: payload.readUInt32BE(8) };
}

/**
 * The name and value of a HEADER packet, as views of `payload`: what {@link decodeCommand} gives
 * as `name` and `value`, without the command object, for a receiver that wants the pair as a list.
 * @throws MalformedPacketError on a bad packet.
 */
export function decodeHeaderFields(payload: Buffer): [name: Buffer, value: Buffer] {
  const nameEnd = headerNameEnd(payload);
  return [payload.subarray(0, nameEnd), payload.subarray(nameEnd + 1, payload.length - 1)];
}

/**
 * Checks a HEADER payload (a non-empty name and a value, each NUL-terminated) and returns where the
 * name ends (the index in `bytes` of its NUL), so a reader can decode both fields without cutting
 * the payload.
 * @param start where the payload starts in `bytes` (default 0)
 * @param end where it ends (default the end of `bytes`)
 * @throws MalformedPacketError if it is not exactly that.
 */
export function headerNameEnd(bytes: Buffer, start = 0, end = bytes.length): number {
  const last = end - 1;
  // Past `end` the NUL searched for may be a stale byte, but then the payload's own last byte is not a NUL.
  const nameEnd = bytes.indexOf(0, start);
  if (last < start || bytes[last] !== 0 || nameEnd === last || bytes.indexOf(0, nameEnd + 1) !== last) {
    readCStrings(bytes.subarray(start, end), 0, 2, 'HEADER'); // throws, naming what is wrong
  }
  if (nameEnd === start) throw new MalformedPacketError('HEADER: empty name');
  return nameEnd;
}

/**
 * Decodes one MTA command.
 * @throws MalformedPacketError (or its subclass {@link UnknownCommandError}) on a bad packet.
 */
export function decodeCommand(code: number, payload: Buffer): MtaCommand {
  switch (code) {
    case Command.OPTNEG:
      return { type: 'optneg', ...decodeOptneg(payload) };
    case Command.MACRO:
      return { type: 'macro', ...decodeMacros(payload) };
    case Command.CONNECT:
      return { type: 'connect', ...decodeConnect(payload) };
    case Command.HELO:
      return { type: 'helo', name: readCStrings(payload, 0, 1, 'HELO')[0]! };
    case Command.MAIL:
      return { type: 'mail', args: splitCStrings(payload, 'MAIL') };
    case Command.RCPT:
      return { type: 'rcpt', args: splitCStrings(payload, 'RCPT') };
    case Command.HEADER: {
      const [name, value] = decodeHeaderFields(payload);
      return { type: 'header', name, value };
    }
    case Command.BODY:
      return { type: 'body', chunk: payload };
    case Command.BODYEOB:
      return payload.length > 0 ? { type: 'eob', chunk: payload } : { type: 'eob' };
    case Command.UNKNOWN:
      return { type: 'unknown', line: readCStrings(payload, 0, 1, 'UNKNOWN')[0]! };
    case Command.DATA:
    case Command.EOH:
    case Command.ABORT:
    case Command.QUIT:
    case Command.QUIT_NC: {
      const type = commandTypes[code] as 'data' | 'eoh' | 'abort' | 'quit' | 'quitNc';
      if (payload.length !== 0) expectEmpty(payload, type.toUpperCase());
      return { type };
    }
    default:
      throw new UnknownCommandError(code);
  }
}

/** Appends one MTA command, as a complete packet, to `writer`. */
export function writeCommand(writer: PacketWriter, command: MtaCommand<Bytes>): PacketWriter {
  switch (command.type) {
    case 'optneg':
      return writer.begin(Command.OPTNEG).uint32(command.version).uint32(command.actions).uint32(command.protocol).end();
    case 'macro':
      writer.begin(Command.MACRO).byte(command.stage);
      for (const [name, value] of command.macros) writer.cstring(name).cstring(value);
      return writer.end();
    case 'connect':
      writer.begin(Command.CONNECT).cstring(command.hostname).byte(codeByFamily[command.family]);
      if (command.family !== 'unknown') writer.uint16(command.port ?? 0).cstring(command.address ?? '');
      return writer.end();
    case 'helo':
      return writer.begin(Command.HELO).cstring(command.name).end();
    case 'mail':
    case 'rcpt':
      writer.begin(command.type === 'mail' ? Command.MAIL : Command.RCPT);
      for (const arg of command.args) writer.cstring(arg);
      return writer.end();
    case 'header':
      return writer.begin(Command.HEADER).cstring(command.name).cstring(command.value).end();
    case 'body':
      return writer.begin(Command.BODY).bytes(command.chunk).end();
    case 'eob':
      writer.begin(Command.BODYEOB);
      if (command.chunk !== undefined) writer.bytes(command.chunk);
      return writer.end();
    case 'unknown':
      return writer.begin(Command.UNKNOWN).cstring(command.line).end();
    case 'data':
      return writer.begin(Command.DATA).end();
    case 'eoh':
      return writer.begin(Command.EOH).end();
    case 'abort':
      return writer.begin(Command.ABORT).end();
    case 'quit':
      return writer.begin(Command.QUIT).end();
    case 'quitNc':
      return writer.begin(Command.QUIT_NC).end();
  }
}

const scratch = new PacketWriter(1024);

/** Encodes one MTA command as a complete packet. */
export function encodeCommand(command: MtaCommand<Bytes>): Buffer {
  try {
    return writeCommand(scratch, command).copy();
  } finally {
    scratch.reset();
  }
}
