/**
 * Commands from the MTA to the milter (`SMFIC_*`): typed form, decoder and encoder. The milter
 * side decodes them; the MTA side (client, test kit) encodes them.
 */
import { type Bytes, MalformedPacketError, byteLength, splitCStrings, readCStrings, writeCString } from './bytes.js';
import { Command, Family, Limits, codeName, type AddressFamily } from './constants.js';
import { EMPTY_PAYLOAD, FRAME_HEADER_SIZE, encodeFrame, writeFrameHeader } from './frame.js';

/** The SMTP client as described by a CONNECT command. */
export interface ConnectInfo<S> {
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
 * @throws MalformedPacketError
 */
export function checkMacros(payload: Buffer): void {
  if (payload.length === 0) throw new MalformedPacketError('MACRO: missing stage byte');
  if (payload.length === 1) return;
  if (payload[payload.length - 1] !== 0) throw new MalformedPacketError('MACRO: payload is not NUL-terminated');
  let strings = 0;
  for (let i = payload.indexOf(0, 1); i !== -1; i = payload.indexOf(0, i + 1)) strings++;
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
      const [name, value] = readCStrings(payload, 0, 2, 'HEADER');
      if (name!.length === 0) throw new MalformedPacketError('HEADER: empty name');
      return { type: 'header', name: name!, value: value! };
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
      expectEmpty(payload, type.toUpperCase());
      return { type };
    }
    default:
      throw new UnknownCommandError(code);
  }
}

function stringsFrame(code: number, strings: readonly Bytes[], prefix?: number): Buffer {
  let size = prefix === undefined ? 0 : 1;
  for (const s of strings) size += byteLength(s) + 1;
  const frame = Buffer.allocUnsafe(FRAME_HEADER_SIZE + size);
  let offset = writeFrameHeader(frame, 0, code, size);
  if (prefix !== undefined) frame[offset++] = prefix;
  for (const s of strings) offset = writeCString(frame, offset, s);
  return frame;
}

/** Encodes one MTA command as a complete packet. */
export function encodeCommand(command: MtaCommand<Bytes>): Buffer {
  switch (command.type) {
    case 'optneg': {
      const payload = Buffer.allocUnsafe(Limits.OPTLEN);
      payload.writeUInt32BE(command.version >>> 0, 0);
      payload.writeUInt32BE(command.actions >>> 0, 4);
      payload.writeUInt32BE(command.protocol >>> 0, 8);
      return encodeFrame(Command.OPTNEG, payload);
    }
    case 'macro':
      return stringsFrame(Command.MACRO, command.macros.flat(), command.stage);
    case 'connect': {
      const family = codeByFamily[command.family];
      if (command.family === 'unknown') return encodeConnectUnknown(command.hostname, family);
      const hostLength = byteLength(command.hostname);
      const addressLength = byteLength(command.address ?? '');
      const size = hostLength + 1 + 1 + 2 + addressLength + 1;
      const frame = Buffer.allocUnsafe(FRAME_HEADER_SIZE + size);
      let offset = writeFrameHeader(frame, 0, Command.CONNECT, size);
      offset = writeCString(frame, offset, command.hostname);
      frame[offset++] = family;
      frame.writeUInt16BE(command.port ?? 0, offset);
      writeCString(frame, offset + 2, command.address ?? '');
      return frame;
    }
    case 'helo':
      return stringsFrame(Command.HELO, [command.name]);
    case 'mail':
      return stringsFrame(Command.MAIL, command.args);
    case 'rcpt':
      return stringsFrame(Command.RCPT, command.args);
    case 'header':
      return stringsFrame(Command.HEADER, [command.name, command.value]);
    case 'body':
      return encodeFrame(Command.BODY, typeof command.chunk === 'string' ? Buffer.from(command.chunk) : command.chunk);
    case 'eob':
      return command.chunk === undefined ? encodeFrame(Command.BODYEOB) : encodeFrame(Command.BODYEOB, typeof command.chunk === 'string' ? Buffer.from(command.chunk) : command.chunk);
    case 'unknown':
      return stringsFrame(Command.UNKNOWN, [command.line]);
    case 'data':
      return encodeFrame(Command.DATA, EMPTY_PAYLOAD);
    case 'eoh':
      return encodeFrame(Command.EOH, EMPTY_PAYLOAD);
    case 'abort':
      return encodeFrame(Command.ABORT, EMPTY_PAYLOAD);
    case 'quit':
      return encodeFrame(Command.QUIT, EMPTY_PAYLOAD);
    case 'quitNc':
      return encodeFrame(Command.QUIT_NC, EMPTY_PAYLOAD);
  }
}

function encodeConnectUnknown(hostname: Bytes, family: number): Buffer {
  const size = byteLength(hostname) + 2;
  const frame = Buffer.allocUnsafe(FRAME_HEADER_SIZE + size);
  const offset = writeCString(frame, writeFrameHeader(frame, 0, Command.CONNECT, size), hostname);
  frame[offset] = family;
  return frame;
}
