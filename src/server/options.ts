/**
 * Options of a {@link MilterServer}: the defaults, each with the reason for its value, and the
 * check that refuses a bad value when the server is constructed — before anything listens.
 */
import type { Logger } from '../log.js';
import { resolveSessionOptions, MAX_TIMER_MS, type ResolvedSessionOptions, type SessionOptions } from '../milter/session-options.js';
import { parseSocketSpec, type SocketAddress } from '../net/socket-spec.js';
import { checkInteger } from '../validate.js';

/** Options of a {@link MilterServer}. */
export interface ServerOptions extends Omit<SessionOptions, 'id'> {
  /** Where to listen: `unix:/path`, `inet:port@host`, `inet:host:port`, ... (default {@link SERVER_DEFAULTS}`.socket`). */
  socket?: string;
  /** Permission bits of a unix socket, from 0 to 0o777 (default 0o660). */
  socketMode?: number;
  /** Most connections served at once (default 500). */
  maxConnections?: number;
  /** Close a negotiated connection when the MTA sends nothing for this long, in ms (default 3 610 000). */
  idleTimeout?: number;
  /** Close a connection that has not finished negotiating this long after connecting, in ms (default 10 000). */
  negotiationTimeout?: number;
  /** Close a connection when a packet is still incomplete this long after its first byte, in ms (default 30 000). */
  packetTimeout?: number;
  /** Bytes of replies waiting for the MTA to read them before reading from it pauses (default 1 MiB). */
  maxWriteBuffer?: number;
  /** Close a connection whose replies stay over `maxWriteBuffer` with none read for this long, in ms (default 30 000). */
  writeStallTimeout?: number;
  /** Listen backlog (default: Node.js's, 511). */
  backlog?: number;
  /**
   * Worker processes sharing the listening socket (default 0: serve in this process). The script
   * that creates the server runs again in each worker, so construct and listen the same way there.
   */
  workers?: number;
  logger?: Logger;
}

/** Defaults of {@link ServerOptions}, each with its reason. */
export const SERVER_DEFAULTS = {
  /** Loopback TCP, which both Postfix and Sendmail reach without permission changes. */
  socket: 'inet:8890@127.0.0.1',
  /** Owner and group read and write: the MTA's user joins the socket's group, nobody else connects. */
  socketMode: 0o660,
  /**
   * 500: Postfix runs at most default_process_limit = 100 smtpd processes, each holding one
   * milter connection, so this serves several MTAs at full load, while staying well under the
   * usual 1024 open-file limit (each connection is a descriptor; logs and modules need some too).
   */
  maxConnections: 500,
  /**
   * 3610 s: just over Sendmail's longest wait for an SMTP client between commands
   * (Timeout.command, 1 h; Postfix's smtpd_timeout is 300 s). The MTA sends nothing while its
   * client is silent, so a shorter limit would cut real conversations; half libmilter's 7210 s
   * because connections abandoned without a close give their slot back sooner. Hostile idle
   * connections are ended by the negotiation and packet deadlines, not by this.
   */
  idleTimeoutMs: 3_610_000,
  /**
   * 10 s: an MTA sends its negotiation packet as soon as it connects (Sendmail gives up writing
   * after its S: timeout of 10 s, Postfix connecting and negotiating after milter_connect_timeout
   * = 30 s); a connection that has not negotiated by then is not an MTA at work.
   */
  negotiationTimeoutMs: 10_000,
  /**
   * 30 s, however the bytes trickle in: an MTA writes a packet in one go (Postfix gives up after
   * milter_command_timeout = 30 s, Sendmail after 10 s), so a packet still incomplete after 30 s
   * comes from a peer holding the connection open.
   */
  packetTimeoutMs: 30_000,
  /**
   * 1 MiB: replies are a few bytes and the MTA reads each before sending more; the largest
   * legitimate burst, a body replacement at end of message, keeps flowing above it (only reading
   * pauses). A peer that sends without reading stops being read past it.
   */
  maxWriteBuffer: 1024 * 1024,
  /**
   * 30 s: an MTA waits at most that long for an answer (Postfix's milter_command_timeout;
   * Sendmail's R: is 10 s), so replies not read for 30 s have no reader.
   */
  writeStallTimeoutMs: 30_000,
  /** 30 s for sessions in flight at close: what an MTA waits for one answer (Postfix's command timeout). */
  closeGraceMs: 30_000,
  /** One process: multi-process mode is for filters that are CPU-bound in JavaScript. */
  workers: 0,
} as const;

/** Server options with every default filled in and every value checked. */
export interface ResolvedServerOptions {
  address: SocketAddress;
  socketMode: number;
  maxConnections: number;
  idleTimeout: number;
  negotiationTimeout: number;
  packetTimeout: number;
  maxWriteBuffer: number;
  writeStallTimeout: number;
  backlog: number | undefined;
  workers: number;
  session: ResolvedSessionOptions;
}

/** Most worker processes: more than a few per core only adds memory. */
const MAX_WORKERS = 256;

/**
 * Fills in the defaults and checks every value, the session's included.
 * @throws InvalidOptionError naming the option and what it accepts
 * @throws SocketSpecError for a socket spec that cannot be understood
 */
export function resolveServerOptions(options: Omit<ServerOptions, 'filter'>): ResolvedServerOptions {
  return {
    address: parseSocketSpec(options.socket ?? SERVER_DEFAULTS.socket),
    socketMode: checkInteger('socketMode', options.socketMode ?? SERVER_DEFAULTS.socketMode, 0, 0o777),
    maxConnections: checkInteger('maxConnections', options.maxConnections ?? SERVER_DEFAULTS.maxConnections, 1),
    idleTimeout: checkInteger('idleTimeout', options.idleTimeout ?? SERVER_DEFAULTS.idleTimeoutMs, 1, MAX_TIMER_MS),
    negotiationTimeout: checkInteger('negotiationTimeout', options.negotiationTimeout ?? SERVER_DEFAULTS.negotiationTimeoutMs, 1, MAX_TIMER_MS),
    packetTimeout: checkInteger('packetTimeout', options.packetTimeout ?? SERVER_DEFAULTS.packetTimeoutMs, 1, MAX_TIMER_MS),
    maxWriteBuffer: checkInteger('maxWriteBuffer', options.maxWriteBuffer ?? SERVER_DEFAULTS.maxWriteBuffer, 1),
    writeStallTimeout: checkInteger('writeStallTimeout', options.writeStallTimeout ?? SERVER_DEFAULTS.writeStallTimeoutMs, 1, MAX_TIMER_MS),
    backlog: options.backlog === undefined ? undefined : checkInteger('backlog', options.backlog, 1),
    workers: checkInteger('workers', options.workers ?? SERVER_DEFAULTS.workers, 0, MAX_WORKERS),
    session: resolveSessionOptions(options),
  };
}
