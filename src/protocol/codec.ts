/**
 * Everything the codec defines, for the library's own modules (the milter session, the client).
 * Programs use the narrower public face in `./index.ts` (`milterkit/protocol`).
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
export * from './writer.js';
export * from './stages.js';
