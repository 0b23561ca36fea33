/**
 * The milter protocol codec: frames, commands, replies, constants and negotiation, with no I/O
 * and no runtime dependencies. Both the milter side and the MTA side are built on it.
 *
 * @packageDocumentation
 */
export * from './constants.js';
export * from './bytes.js';
export * from './frame.js';
export * from './commands.js';
export * from './replies.js';
export * from './negotiation.js';
export * from './reply-text.js';
