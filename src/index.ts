/**
 * milterkit: mail filters for Sendmail and Postfix in TypeScript — the filter class, the milter
 * server that runs it, and what a filter sees. The MTA side is `milterkit/client` and
 * `milterkit/mta`, the offline test kit `milterkit/testing`, the codec `milterkit/protocol`.
 *
 * @packageDocumentation
 */
export { Milter, type BodySource } from './milter/milter.js';
export { defineMilter, type MilterDefinition, type MilterFilter } from './milter/filter.js';
export type {
  Verdict,
  CallbackResult,
  StageName,
  ActionName,
  MacroStageName,
  MilterOptions,
  NegotiateResult,
  ConnectInfo,
  NegotiationOffer,
  NegotiationRequest,
  AddressFamily,
} from './milter/types.js';
export { MilterActionError, DisabledActionError, StageError, ActionArgumentError } from './milter/errors.js';
export { ReplyCodeError, NegotiationError } from './protocol/index.js';
export { MilterServer } from './server/server.js';
export { keepYoungGenerationSmall } from './server/heap.js';
export { SERVER_DEFAULTS, type ServerOptions } from './server/options.js';
export { InvalidOptionError } from './validate.js';
export { SocketSpecError, type SocketAddress } from './net/socket-spec.js';
export { SESSION_DEFAULTS, type SessionOptions as MilterSessionOptions, type SessionIO, type ErrorVerdict, type MilterSessionHandle } from './milter/session-options.js';
export { silentLogger, type Logger } from './log.js';

import { createMilterSession as createSession } from './milter/session.js';
import type { MilterSessionHandle, SessionIO, SessionOptions } from './milter/session-options.js';
/**
 * Runs the milter side of one connection over any transport (what {@link MilterServer} does for
 * each socket): the session writes replies through `io` and is fed with `receive`/`end`.
 */
export const createMilterSession: (options: SessionOptions, io: SessionIO) => MilterSessionHandle = createSession;
