/**
 * Numeric constants of the milter protocol, with the values of Sendmail's `mfdef.h` and
 * `mfapi.h` (8.17/8.18). Command and reply codes are single ASCII bytes on the wire; they are
 * exported here as their byte values so the codec can switch on them without string work.
 *
 * @packageDocumentation
 */

/** Commands sent by the MTA to the milter (`SMFIC_*`). */
export const Command = {
  ABORT: 0x41, // 'A'
  BODY: 0x42, // 'B'
  CONNECT: 0x43, // 'C'
  MACRO: 0x44, // 'D'
  BODYEOB: 0x45, // 'E'
  HELO: 0x48, // 'H'
  QUIT_NC: 0x4b, // 'K'
  HEADER: 0x4c, // 'L'
  MAIL: 0x4d, // 'M'
  EOH: 0x4e, // 'N'
  OPTNEG: 0x4f, // 'O'
  QUIT: 0x51, // 'Q'
  RCPT: 0x52, // 'R'
  DATA: 0x54, // 'T'
  UNKNOWN: 0x55, // 'U'
} as const;
/** A command byte sent by the MTA. */
export type CommandCode = (typeof Command)[keyof typeof Command];

/** Replies and modification requests sent by the milter to the MTA (`SMFIR_*`). */
export const Reply = {
  ADDRCPT: 0x2b, // '+'
  DELRCPT: 0x2d, // '-'
  ADDRCPT_PAR: 0x32, // '2'
  SHUTDOWN: 0x34, // '4'
  ACCEPT: 0x61, // 'a'
  REPLBODY: 0x62, // 'b'
  CONTINUE: 0x63, // 'c'
  DISCARD: 0x64, // 'd'
  CHGFROM: 0x65, // 'e'
  CONN_FAIL: 0x66, // 'f'
  ADDHEADER: 0x68, // 'h'
  INSHEADER: 0x69, // 'i'
  SETSYMLIST: 0x6c, // 'l'
  CHGHEADER: 0x6d, // 'm'
  PROGRESS: 0x70, // 'p'
  QUARANTINE: 0x71, // 'q'
  REJECT: 0x72, // 'r'
  SKIP: 0x73, // 's'
  TEMPFAIL: 0x74, // 't'
  REPLYCODE: 0x79, // 'y'
  OPTNEG: 0x4f, // 'O'
} as const;
/** A reply byte sent by the milter. */
export type ReplyCode = (typeof Reply)[keyof typeof Reply];

/** Action flags (`SMFIF_*`): what the milter may change at end of message. */
export const Action = {
  NONE: 0x000,
  ADDHDRS: 0x001,
  CHGBODY: 0x002,
  ADDRCPT: 0x004,
  DELRCPT: 0x008,
  CHGHDRS: 0x010,
  QUARANTINE: 0x020,
  CHGFROM: 0x040,
  ADDRCPT_PAR: 0x080,
  SETSYMLIST: 0x100,
} as const;

/** Action masks of mfdef.h. */
export const ActionMask = {
  V1: 0x0f,
  V2: 0x3f,
  CURRENT: 0x1ff,
} as const;

/** Protocol flags (`SMFIP_*`): steps the MTA skips, replies the milter omits, capabilities. */
export const Protocol = {
  NOCONNECT: 0x00000001,
  NOHELO: 0x00000002,
  NOMAIL: 0x00000004,
  NORCPT: 0x00000008,
  NOBODY: 0x00000010,
  NOHDRS: 0x00000020,
  NOEOH: 0x00000040,
  NR_HDR: 0x00000080,
  NOUNKNOWN: 0x00000100,
  NODATA: 0x00000200,
  SKIP: 0x00000400,
  RCPT_REJ: 0x00000800,
  NR_CONN: 0x00001000,
  NR_HELO: 0x00002000,
  NR_MAIL: 0x00004000,
  NR_RCPT: 0x00008000,
  NR_DATA: 0x00010000,
  NR_UNKN: 0x00020000,
  NR_EOH: 0x00040000,
  NR_BODY: 0x00080000,
  HDR_LEADSPC: 0x00100000,
  MDS_256K: 0x10000000,
  MDS_1M: 0x20000000,
} as const;

/** Protocol masks of mfdef.h and Postfix. */
export const ProtocolMask = {
  V1: 0x3f,
  V2: 0x7f,
  CURRENT: 0x1fffff,
  /** Bits reserved for the library (MDS negotiation); a filter never sets them itself. */
  INTERNAL: 0x70000000,
  /** All "do not send" bits (Postfix's SMFIP_NOSEND_MASK). */
  NOSEND: 0x37f,
  /** All "no reply" bits. */
  NOREPLY: 0xff080,
} as const;

/** Macro stages (`SMFIM_*`) used in the macro lists of the OPTNEG reply. */
export const MacroStage = {
  CONNECT: 0,
  HELO: 1,
  ENVFROM: 2,
  ENVRCPT: 3,
  DATA: 4,
  EOM: 5,
  EOH: 6,
} as const;
/** A macro stage number. */
export type MacroStageCode = (typeof MacroStage)[keyof typeof MacroStage];

/** Size limits of the protocol. */
export const Limits = {
  /** Size of the length field. */
  LEN_BYTES: 4,
  /** Fixed part of an OPTNEG payload: version, actions, protocol. */
  OPTLEN: 12,
  /** Largest body chunk payload (`B` and `b`), whatever was negotiated. */
  CHUNK_SIZE: 65535,
  /** Default largest payload in either direction. */
  MAX_DATA_SIZE: 65535,
  MDS_64K: 65535,
  MDS_256K: 262143,
  MDS_1M: 1048575,
  /** Longest line of a custom reply text (libmilter's MAXREPLYLEN). */
  MAX_REPLY_LINE: 980,
  /** Most lines of a multi-line custom reply. */
  MAX_REPLY_LINES: 32,
} as const;

/** The newest protocol version this library speaks. */
export const PROTOCOL_VERSION = 6;
/** The oldest protocol version this library accepts from an MTA. */
export const MIN_PROTOCOL_VERSION = 2;

/** Address family byte of a CONNECT packet. */
export const Family = {
  UNKNOWN: 0x55, // 'U'
  UNIX: 0x4c, // 'L'
  INET: 0x34, // '4'
  INET6: 0x36, // '6'
} as const;

/** The family of the SMTP client's address, as the milter API presents it. */
export type AddressFamily = 'unknown' | 'unix' | 'inet' | 'inet6';

/** Printable name of a command or reply byte, for logs and errors. */
export function codeName(code: number): string {
  return code >= 0x20 && code < 0x7f ? `'${String.fromCharCode(code)}'` : `0x${code.toString(16).padStart(2, '0')}`;
}
