/**
 * The milter protocol codec (`milterkit/protocol`): frames, commands, replies, constants and
 * negotiation, with no I/O and no runtime dependencies. Both the milter side and the MTA side are
 * built on it; this is the face for programs that speak the protocol themselves.
 *
 * @packageDocumentation
 */
export {
  Command,
  Reply,
  Action,
  Protocol,
  MacroStage,
  Family,
  Limits,
  PROTOCOL_VERSION,
  MIN_PROTOCOL_VERSION,
  type CommandCode,
  type ReplyCode,
  type MacroStageCode,
  type AddressFamily,
} from './constants.js';
export { text, MalformedPacketError, type Bytes } from './bytes.js';
export { FrameReader, FrameError, encodeFrame, DEFAULT_MAX_PAYLOAD, type FrameErrorCode, type FrameHandler } from './frame.js';
export { decodeCommand, decodeHeaderFields, headerNameEnd, encodeCommand, checkMacros, UnknownCommandError, type MtaCommand, type ConnectInfo } from './commands.js';
export { decodeReply, encodeReply, UnknownReplyError, type MilterReply, type MacroRequest } from './replies.js';
export { negotiate, describeActions, NegotiationError, type NegotiationOffer, type NegotiationRequest, type NegotiationResult } from './negotiation.js';
export { formatReplyText, ReplyCodeError } from './reply-text.js';
export {
  stageTable,
  stageByCallback,
  stageBySmtp,
  stageByMacroStage,
  stageNames,
  macroStageNames,
  type StageRow,
  type CallbackName,
  type StageName,
  type MacroStageName,
  type SmtpStage,
} from './stages.js';
