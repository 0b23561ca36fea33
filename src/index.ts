/**
 * milterkit: mail filters for Sendmail and Postfix in TypeScript.
 *
 * @packageDocumentation
 */
export { Milter, type BodySource } from './milter/milter.js';
export { defineMilter, compileFilter, type MilterDefinition, type MilterFilter, type CompiledFilter } from './milter/filter.js';
export { MilterSession, createMilterSession, bareAddress, type SessionOptions, type SessionIO, type ErrorVerdict } from './milter/session.js';
export { MacroStore } from './milter/macros.js';
export { MilterActionError, DisabledActionError, StageError, ActionArgumentError } from './milter/errors.js';
export * from './milter/types.js';
export { MilterServer, type ServerOptions } from './server/server.js';
export { parseSocketSpec, formatSocketAddress, SocketSpecError, type SocketAddress } from './net/socket-spec.js';
export { type Logger, silentLogger } from './log.js';
export { ReplyCodeError, NegotiationError } from './protocol/index.js';
