/**
 * The MTA side of the milter protocol: a client that drives any milter (OpenDKIM, rspamd,
 * clamav-milter, or one written with milterkit) over its socket, and a virtual MTA that runs whole
 * messages through it as Postfix or Sendmail would.
 *
 * @packageDocumentation
 */
export * from './errors.js';
export * from './negotiation.js';
export * from './modifications.js';
export * from './connection.js';
export * from './socket.js';
export * from '../mta/index.js';
