/**
 * Replies and modification requests from the milter to the MTA (`SMFIR_*`): typed form, decoder
 * and encoder. The milter side encodes them; the MTA side decodes them.
 */
import { type Bytes, MalformedPacketError, byteLength, readCStrings, splitCStrings } from './bytes.js';
import { Limits, MacroStage, Reply, codeName, type MacroStageCode } from './constants.js';
import { encodeFrame } from './frame.js';
import { PacketWriter } from './writer.js';

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

/** A reply that modifies the message (legal only at end of message). */
export type Modification<S = Buffer> = Extract<
  MilterReply<S>,
  { type: 'addHeader' | 'insertHeader' | 'changeHeader' | 'addRcpt' | 'addRcptPar' | 'delRcpt' | 'replaceBody' | 'changeFrom' | 'quarantine' }
>;

/** Types of the replies that modify the message (legal only after end of message). */
export const modificationTypes: ReadonlySet<MilterReply['type']> = new Set<Modification['type']>([
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

// ---- encoders ----

/** Pre-encoded packets of the replies without payload, shared (never mutate them). */
export const simpleReplyFrames: Readonly<Record<SimpleReplyType, Buffer>> = Object.fromEntries(
  Object.entries(simpleReplies).map(([type, code]) => [type, encodeFrame(code)]),
) as Record<SimpleReplyType, Buffer>;

/** Appends one milter reply, as a complete packet, to `writer`. */
export function writeReply(writer: PacketWriter, reply: MilterReply<Bytes>): PacketWriter {
  switch (reply.type) {
    case 'optneg': {
      writer.begin(Reply.OPTNEG).uint32(reply.version).uint32(reply.actions).uint32(reply.protocol);
      // Macro lists in stage order.
      for (const stage of Object.values(MacroStage)) {
        const list = reply.macros?.[stage];
        if (list !== undefined) writer.uint32(stage).cstring(list);
      }
      return writer.end();
    }
    case 'replyCode':
      return writer.begin(Reply.REPLYCODE).cstring(reply.text).end();
    case 'addHeader':
      return writer.begin(Reply.ADDHEADER).cstring(reply.name).cstring(reply.value).end();
    case 'insertHeader':
      return writer.begin(Reply.INSHEADER).uint32(reply.index).cstring(reply.name).cstring(reply.value).end();
    case 'changeHeader':
      return writer.begin(Reply.CHGHEADER).uint32(reply.index).cstring(reply.name).cstring(reply.value).end();
    case 'addRcpt':
      return writer.begin(Reply.ADDRCPT).cstring(reply.rcpt).end();
    case 'addRcptPar':
      writer.begin(Reply.ADDRCPT_PAR).cstring(reply.rcpt);
      if (reply.args !== undefined) writer.cstring(reply.args);
      return writer.end();
    case 'delRcpt':
      return writer.begin(Reply.DELRCPT).cstring(reply.rcpt).end();
    case 'replaceBody':
      return writer.begin(Reply.REPLBODY).bytes(reply.chunk).end();
    case 'changeFrom':
      writer.begin(Reply.CHGFROM).cstring(reply.sender);
      if (reply.args !== undefined) writer.cstring(reply.args);
      return writer.end();
    case 'quarantine':
      return writer.begin(Reply.QUARANTINE).cstring(reply.reason).end();
    default:
      return writer.bytes(simpleReplyFrames[reply.type]);
  }
}

const scratch = new PacketWriter(1024);

/** Encodes one milter reply as a complete packet. */
export function encodeReply(reply: MilterReply<Bytes>): Buffer {
  if (reply.type in simpleReplies) return simpleReplyFrames[reply.type as SimpleReplyType];
  try {
    return writeReply(scratch, reply).copy();
  } finally {
    scratch.reset();
  }
}

/**
 * Payload size of a reply once encoded, for checking a modification against the limit the MTA
 * accepts when the filter asks for it (it is encoded later, with the rest of the reply): a u32
 * for the index, each string with its NUL, a body chunk as it is.
 */
export function replyPayloadSize(reply: Modification<Bytes>): number {
  switch (reply.type) {
    case 'addHeader':
      return cstringSize(reply.name) + cstringSize(reply.value);
    case 'insertHeader':
    case 'changeHeader':
      return 4 + cstringSize(reply.name) + cstringSize(reply.value);
    case 'addRcpt':
    case 'delRcpt':
      return cstringSize(reply.rcpt);
    case 'addRcptPar':
      return cstringSize(reply.rcpt) + (reply.args === undefined ? 0 : cstringSize(reply.args));
    case 'changeFrom':
      return cstringSize(reply.sender) + (reply.args === undefined ? 0 : cstringSize(reply.args));
    case 'quarantine':
      return cstringSize(reply.reason);
    case 'replaceBody':
      return byteLength(reply.chunk);
  }
}

function cstringSize(value: Bytes): number {
  return byteLength(value) + 1;
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
