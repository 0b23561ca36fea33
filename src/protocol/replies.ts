/**
 * Replies and modification requests from the milter to the MTA (`SMFIR_*`): typed form, decoder
 * and encoder. The milter side encodes them; the MTA side decodes them.
 */
import { type Bytes, MalformedPacketError, byteLength, readCStrings, splitCStrings, writeCString } from './bytes.js';
import { Limits, MacroStage, Reply, codeName, type MacroStageCode } from './constants.js';
import { FRAME_HEADER_SIZE, encodeFrame, writeFrameHeader } from './frame.js';

/** Macro names requested per stage in an OPTNEG reply (space-separated list per stage). */
export type MacroRequest<S = Buffer> = Partial<Record<MacroStageCode, S>>;

/** Replies with no payload, by type. */
export const simpleReplies = {
  continue: Reply.CONTINUE,
  accept: Reply.ACCEPT,
  reject: Reply.REJECT,
  tempfail: Reply.TEMPFAIL,
  discard: Reply.DISCARD,
  skip: Reply.SKIP,
  progress: Reply.PROGRESS,
  shutdown: Reply.SHUTDOWN,
  connFail: Reply.CONN_FAIL,
} as const;
/** A reply that carries no payload. */
export type SimpleReplyType = keyof typeof simpleReplies;

/**
 * One milter reply. `S` is the type of string fields: `Buffer` when decoded, {@link Bytes} when
 * given to the encoder.
 */
export type MilterReply<S = Buffer> =
  | { type: 'optneg'; version: number; actions: number; protocol: number; macros?: MacroRequest<S> }
  | { type: SimpleReplyType }
  | { type: 'replyCode'; text: S }
  | { type: 'addHeader'; name: S; value: S }
  | { type: 'insertHeader'; index: number; name: S; value: S }
  | { type: 'changeHeader'; index: number; name: S; value: S }
  | { type: 'addRcpt'; rcpt: S }
  | { type: 'addRcptPar'; rcpt: S; args?: S }
  | { type: 'delRcpt'; rcpt: S }
  | { type: 'replaceBody'; chunk: S }
  | { type: 'changeFrom'; sender: S; args?: S }
  | { type: 'quarantine'; reason: S };

/** Types of the replies that modify the message (legal only after end of message). */
export const modificationTypes: ReadonlySet<MilterReply['type']> = new Set([
  'addHeader',
  'insertHeader',
  'changeHeader',
  'addRcpt',
  'addRcptPar',
  'delRcpt',
  'replaceBody',
  'changeFrom',
  'quarantine',
]);

/** Types of the replies that end a command (the MTA waits for exactly one). */
export const finalReplyTypes: ReadonlySet<MilterReply['type']> = new Set([
  'continue',
  'accept',
  'reject',
  'tempfail',
  'discard',
  'replyCode',
  'skip',
  'shutdown',
  'connFail',
]);

/** A reply byte this library does not know. */
export class UnknownReplyError extends MalformedPacketError {
  constructor(readonly code: number) {
    super(`unknown reply ${codeName(code)}`);
  }
}

const simpleByCode: Readonly<Record<number, SimpleReplyType>> = Object.fromEntries(
  Object.entries(simpleReplies).map(([type, code]) => [code, type as SimpleReplyType]),
);

// ---- encoders (one allocation per packet) ----

/** A packet made of NUL-terminated strings, optionally after a u32 index. */
export function encodeStringsReply(code: number, strings: readonly Bytes[], index?: number): Buffer {
  let size = index === undefined ? 0 : 4;
  for (const s of strings) size += byteLength(s) + 1;
  const frame = Buffer.allocUnsafe(FRAME_HEADER_SIZE + size);
  let offset = writeFrameHeader(frame, 0, code, size);
  if (index !== undefined) {
    frame.writeUInt32BE(index >>> 0, offset);
    offset += 4;
  }
  for (const s of strings) offset = writeCString(frame, offset, s);
  return frame;
}

/** Encodes an OPTNEG reply, with macro lists appended in stage order. */
export function encodeOptnegReply(version: number, actions: number, protocol: number, macros?: MacroRequest<Bytes>): Buffer {
  const lists: Array<[number, Bytes]> = [];
  if (macros !== undefined) {
    for (const stage of Object.values(MacroStage)) {
      const list = macros[stage];
      if (list !== undefined) lists.push([stage, list]);
    }
  }
  let size = Limits.OPTLEN;
  for (const [, list] of lists) size += 4 + byteLength(list) + 1;
  const frame = Buffer.allocUnsafe(FRAME_HEADER_SIZE + size);
  let offset = writeFrameHeader(frame, 0, Reply.OPTNEG, size);
  offset = frame.writeUInt32BE(version >>> 0, offset);
  offset = frame.writeUInt32BE(actions >>> 0, offset);
  offset = frame.writeUInt32BE(protocol >>> 0, offset);
  for (const [stage, list] of lists) {
    offset = frame.writeUInt32BE(stage, offset);
    offset = writeCString(frame, offset, list);
  }
  return frame;
}

/** Pre-encoded packets of the replies without payload, shared (never mutate them). */
export const simpleReplyFrames: Readonly<Record<SimpleReplyType, Buffer>> = Object.fromEntries(
  Object.entries(simpleReplies).map(([type, code]) => [type, encodeFrame(code)]),
) as Record<SimpleReplyType, Buffer>;

function bodyBytes(chunk: Bytes): Uint8Array {
  return typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
}

/** Encodes one milter reply as a complete packet. */
export function encodeReply(reply: MilterReply<Bytes>): Buffer {
  switch (reply.type) {
    case 'optneg':
      return encodeOptnegReply(reply.version, reply.actions, reply.protocol, reply.macros);
    case 'replyCode':
      return encodeStringsReply(Reply.REPLYCODE, [reply.text]);
    case 'addHeader':
      return encodeStringsReply(Reply.ADDHEADER, [reply.name, reply.value]);
    case 'insertHeader':
      return encodeStringsReply(Reply.INSHEADER, [reply.name, reply.value], reply.index);
    case 'changeHeader':
      return encodeStringsReply(Reply.CHGHEADER, [reply.name, reply.value], reply.index);
    case 'addRcpt':
      return encodeStringsReply(Reply.ADDRCPT, [reply.rcpt]);
    case 'addRcptPar':
      return encodeStringsReply(Reply.ADDRCPT_PAR, reply.args === undefined ? [reply.rcpt] : [reply.rcpt, reply.args]);
    case 'delRcpt':
      return encodeStringsReply(Reply.DELRCPT, [reply.rcpt]);
    case 'replaceBody':
      return encodeFrame(Reply.REPLBODY, bodyBytes(reply.chunk));
    case 'changeFrom':
      return encodeStringsReply(Reply.CHGFROM, reply.args === undefined ? [reply.sender] : [reply.sender, reply.args]);
    case 'quarantine':
      return encodeStringsReply(Reply.QUARANTINE, [reply.reason]);
    default:
      return simpleReplyFrames[reply.type];
  }
}

// ---- decoder ----

function decodeOptnegReply(payload: Buffer): MilterReply {
  if (payload.length < Limits.OPTLEN) throw new MalformedPacketError(`OPTNEG reply: ${payload.length} bytes, expected at least ${Limits.OPTLEN}`);
  const reply = {
    type: 'optneg' as const,
    version: payload.readUInt32BE(0),
    actions: payload.readUInt32BE(4),
    protocol: payload.readUInt32BE(8),
    macros: {} as MacroRequest,
  };
  let offset = Limits.OPTLEN;
  while (offset < payload.length) {
    if (offset + 4 >= payload.length) throw new MalformedPacketError('OPTNEG reply: truncated macro list');
    const stage = payload.readUInt32BE(offset);
    const nul = payload.indexOf(0, offset + 4);
    if (nul < 0) throw new MalformedPacketError('OPTNEG reply: macro list is not NUL-terminated');
    if (stage > MacroStage.EOH) throw new MalformedPacketError(`OPTNEG reply: unknown macro stage ${stage}`);
    reply.macros[stage as MacroStageCode] = payload.subarray(offset + 4, nul);
    offset = nul + 1;
  }
  return reply;
}

function optionalSecond(payload: Buffer, what: string): [Buffer, Buffer | undefined] {
  const parts = splitCStrings(payload, what);
  if (parts.length > 2) throw new MalformedPacketError(`${what}: expected 1 or 2 strings, found ${parts.length}`);
  return [parts[0]!, parts[1]];
}

function indexed(payload: Buffer, what: string): { index: number; name: Buffer; value: Buffer } {
  if (payload.length < 4) throw new MalformedPacketError(`${what}: missing index`);
  const [name, value] = readCStrings(payload, 4, 2, what);
  return { index: payload.readUInt32BE(0), name: name!, value: value! };
}

/**
 * Decodes one milter reply exactly: trailing bytes or missing terminators are errors, as Postfix
 * treats them.
 * @throws MalformedPacketError (or {@link UnknownReplyError}).
 */
export function decodeReply(code: number, payload: Buffer): MilterReply {
  const simple = simpleByCode[code];
  if (simple !== undefined) {
    if (payload.length !== 0) throw new MalformedPacketError(`${codeName(code)} reply: unexpected payload of ${payload.length} bytes`);
    return { type: simple };
  }
  switch (code) {
    case Reply.OPTNEG:
      return decodeOptnegReply(payload);
    case Reply.REPLYCODE:
      return { type: 'replyCode', text: readCStrings(payload, 0, 1, 'REPLYCODE')[0]! };
    case Reply.ADDHEADER: {
      const [name, value] = readCStrings(payload, 0, 2, 'ADDHEADER');
      return { type: 'addHeader', name: name!, value: value! };
    }
    case Reply.INSHEADER:
      return { type: 'insertHeader', ...indexed(payload, 'INSHEADER') };
    case Reply.CHGHEADER:
      return { type: 'changeHeader', ...indexed(payload, 'CHGHEADER') };
    case Reply.ADDRCPT:
      return { type: 'addRcpt', rcpt: readCStrings(payload, 0, 1, 'ADDRCPT')[0]! };
    case Reply.ADDRCPT_PAR: {
      const [rcpt, args] = optionalSecond(payload, 'ADDRCPT_PAR');
      return args === undefined ? { type: 'addRcptPar', rcpt } : { type: 'addRcptPar', rcpt, args };
    }
    case Reply.DELRCPT:
      return { type: 'delRcpt', rcpt: readCStrings(payload, 0, 1, 'DELRCPT')[0]! };
    case Reply.REPLBODY:
      return { type: 'replaceBody', chunk: payload };
    case Reply.CHGFROM: {
      const [sender, args] = optionalSecond(payload, 'CHGFROM');
      return args === undefined ? { type: 'changeFrom', sender } : { type: 'changeFrom', sender, args };
    }
    case Reply.QUARANTINE:
      return { type: 'quarantine', reason: readCStrings(payload, 0, 1, 'QUARANTINE')[0]! };
    default:
      throw new UnknownReplyError(code);
  }
}
