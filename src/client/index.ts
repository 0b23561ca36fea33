/**
 * The MTA side of the milter protocol (`milterkit/client`): a client that drives any milter
 * (OpenDKIM, rspamd, clamav-milter, or one written with milterkit) over its socket. The virtual
 * MTA that runs whole messages through it as Postfix or Sendmail would is `milterkit/mta`.
 *
 * @packageDocumentation
 */
export { MilterClientError, MilterProtocolError, MilterTimeoutError, MilterConnectionError, MilterUsageError, type MilterProtocolErrorCode } from './errors.js';
export { DEFAULT_OFFER, type NegotiatedOptions, type NegotiationChecks } from './negotiation.js';
export type { NegotiationOffer, MacroStageName, ConnectInfo, SmtpStage } from '../protocol/codec.js';
export type { Modification } from './modifications.js';
export {
  MilterConnection,
  DEFAULT_TIMEOUTS,
  type ClientTransport,
  type ClientStage,
  type ClientTimeouts,
  type ReplyLeniency,
  type MilterClientOptions,
  type MacroValues,
  type CommandOptions,
  type ReplyVerdict,
  type StageReply,
  type EndOfMessageReply,
} from './connection.js';
export { connectMilter, DEFAULT_CONNECT_TIMEOUT, type ConnectOptions } from './socket.js';
export { SocketSpecError, type SocketAddress } from '../net/socket-spec.js';
