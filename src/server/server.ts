/**
 * The milter server: listens on a socket spec and runs one {@link MilterSession} per MTA
 * connection. It owns the transport concerns only: the unix socket file, the connection limit,
 * deadlines, write back-pressure, graceful close. Options and their defaults: `./options.ts`.
 */
import { promises as fs } from 'node:fs';
import net from 'node:net';
import { silentLogger, type Logger } from '../log.js';
import { MilterSession, type SessionOptions } from '../milter/session.js';
import { compileFilter } from '../milter/filter.js';
import { formatSocketAddress, type SocketAddress } from '../net/socket-spec.js';
import { acceptStreams, type AcceptPath } from '../net/accept-path.js';
import { SocketStream, type AcceptedStream } from '../net/accepted-stream.js';
import { ClusterPrimary, isClusterWorker, onPrimaryClose } from './cluster.js';
import { ServerConnection } from './connection.js';
import { resolveServerOptions, SERVER_DEFAULTS, type ResolvedServerOptions, type ServerOptions } from './options.js';
import { READ_BUFFER_SIZE } from '../net/read-path.js';
import { RefusalLog } from './refusals.js';
import { bindPathFor, removeOwnSocket, removeStaleSocket, socketFileIdentity, withSocketMode, type SocketFileIdentity } from './unix-socket.js';

/** The deadline sweep runs at least this often, so a deadline is enforced within a few seconds of passing. */
const MAX_SWEEP_INTERVAL_MS = 5000;

/**
 * A milter daemon.
 *
 * @example
 * ```ts
 * const server = new MilterServer({ filter: MyFilter, socket: 'unix:/run/milterkit/milter.sock' });
 * await server.listen();
 * process.on('SIGTERM', () => server.close());
 * ```
 */
export class MilterServer {
  readonly address: SocketAddress;
  private readonly logger: Logger;
  private readonly options: ResolvedServerOptions;
  private readonly sessionOptions: SessionOptions;
  private readonly connectionSet = new Set<ServerConnection>();
  private readonly refusals: RefusalLog;
  /** Every connection reads into this one buffer where Node allows it (see `./read-path.ts`). */
  private readonly readBuffer = Buffer.allocUnsafe(READ_BUFFER_SIZE);
  private server: net.Server | undefined;
  private primary: ClusterPrimary | undefined;
  private socketFile: SocketFileIdentity | undefined;
  private boundPort: number | undefined;
  private nextId = 1;
  private closing = false;
  /** How connections are accepted; `node` until listening. */
  private acceptPath: AcceptPath = 'node';
  /** In a worker process the primary owns the socket file. */
  private readonly ownsSocketFile = !isClusterWorker();

  /** @throws InvalidOptionError or SocketSpecError for an option that cannot be used */
  constructor(options: ServerOptions) {
    this.options = resolveServerOptions(options);
    this.address = this.options.address;
    this.logger = options.logger ?? silentLogger;
    this.refusals = new RefusalLog(this.logger, this.options.maxConnections);
    // Compile once: nothing per connection that can be done at start-up.
    this.sessionOptions = { ...options, filter: compileFilter(options.filter) };
  }

  /** Connections being served. */
  get connections(): number {
    return this.connectionSet.size;
  }

  /** Starts listening; resolves with the address in Postfix's spelling (e.g. `inet:127.0.0.1:8890`). */
  async listen(): Promise<string> {
    if (this.server || this.primary) throw new Error('server already listening');
    const unixPath = this.address.kind === 'unix' && this.ownsSocketFile ? this.address.path : undefined;
    if (unixPath !== undefined) await removeStaleSocket(unixPath);
    if (this.options.workers > 0 && this.ownsSocketFile) return this.listenPrimary(this.options.workers, unixPath);
    // Sockets come here from Node's accept handler (before acceptStreams below, or where it cannot
    // serve a connection through its handle).
    const server = net.createServer({ noDelay: true, pauseOnConnect: false }, (socket) => this.accept(new SocketStream(socket, this.readBuffer)));
    server.on('error', (err) => this.logger.error({ event: 'server-error', err }, 'server error'));
    const bind = (): Promise<void> =>
      new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        const done = (): void => {
          server.off('error', reject);
          resolve();
        };
        const backlog = this.options.backlog;
        if (this.address.kind === 'unix') server.listen({ path: unixPath === undefined ? this.address.path : bindPathFor(unixPath), backlog }, done);
        else server.listen({ host: this.address.host, port: this.address.port, backlog }, done);
      });
    if (unixPath !== undefined) {
      await withSocketMode(this.options.socketMode, bind);
      await fs.rename(bindPathFor(unixPath), unixPath);
      this.socketFile = await socketFileIdentity(unixPath);
    } else await bind();
    // Serving connections through their handles, where Node allows it, saves a third of what a
    // connection costs (see ../net/handle-stream.ts).
    this.acceptPath = acceptStreams(server, this.readBuffer, (stream) => this.accept(stream));
    this.server = server;
    this.startSweep();
    if (!this.ownsSocketFile) onPrimaryClose((graceMs) => this.close(graceMs));
    const bound = server.address();
    const where = typeof bound === 'object' && bound !== null ? formatSocketAddress({ kind: 'inet', host: bound.address, port: bound.port }) : formatSocketAddress(this.address);
    this.logger.info({ event: 'listening', socket: where, pid: process.pid }, 'listening');
    return where;
  }

  private async listenPrimary(workers: number, unixPath: string | undefined): Promise<string> {
    const primary = new ClusterPrimary(workers, this.logger);
    this.primary = primary;
    // The primary binds the socket when the first worker listens; it runs no filter code, so the
    // umask may stay changed until then.
    const bound = unixPath !== undefined ? await withSocketMode(this.options.socketMode, () => primary.start()) : await primary.start();
    if (unixPath !== undefined) this.socketFile = await socketFileIdentity(unixPath);
    const where = this.address.kind === 'inet' && bound ? formatSocketAddress({ kind: 'inet', host: this.address.host, port: bound.port }) : formatSocketAddress(this.address);
    if (bound && this.address.kind === 'inet') this.boundPort = bound.port;
    this.logger.info({ event: 'listening', socket: where, workers }, 'listening with worker processes');
    return where;
  }

  /**
   * Enforces the deadlines with one timer per server, checked several times per shortest
   * deadline, rather than timers refreshed on every read of every connection.
   */
  private startSweep(): void {
    const { idleTimeout, negotiationTimeout, packetTimeout, writeStallTimeout } = this.options;
    const interval = Math.max(10, Math.min(idleTimeout / 4, negotiationTimeout / 4, packetTimeout / 4, writeStallTimeout / 4, MAX_SWEEP_INTERVAL_MS));
    const timer = setInterval(() => {
      const now = Date.now();
      for (const connection of this.connectionSet) {
        const reason = connection.overdue(now);
        if (reason === undefined) continue;
        // An idle MTA is ended politely; a peer past a deadline may not read, so it is cut off.
        if (reason === 'idle timeout') connection.session.terminate(reason);
        else {
          connection.session.logger.warn({ event: 'deadline', reason }, `closing the connection: ${reason}`);
          connection.stream.destroy();
        }
      }
    }, interval);
    timer.unref();
    this.server!.once('close', () => clearInterval(timer));
  }

  /** How this server accepts its connections (see `AcceptPath`). */
  get accepting(): AcceptPath {
    return this.acceptPath;
  }

  /** Process IDs of the worker processes (multi-process mode), else this process. */
  get pids(): number[] {
    return this.primary ? this.primary.pids : [process.pid];
  }

  /** The TCP port actually bound (useful with port 0). */
  get port(): number | undefined {
    const bound = this.server?.address();
    return typeof bound === 'object' && bound !== null ? bound.port : this.boundPort;
  }

  /**
   * Stops accepting connections and waits for the sessions in flight to finish; after
   * `graceMs` (default 30 s) the remaining ones are ended (their abort and close callbacks run).
   */
  async close(graceMs: number = SERVER_DEFAULTS.closeGraceMs): Promise<void> {
    if (this.closing) return;
    const unixPath = this.address.kind === 'unix' && this.ownsSocketFile ? this.address.path : undefined;
    if (this.primary) {
      this.closing = true;
      await this.primary.close(graceMs);
      if (unixPath !== undefined) await removeOwnSocket(unixPath, this.socketFile, this.logger);
      this.logger.info({ event: 'closed' }, 'closed');
      return;
    }
    if (!this.server) return;
    this.closing = true;
    const server = this.server;
    const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
    const sessions = [...this.connectionSet].map((c) => c.session);
    const drained = Promise.all(sessions.map((s) => s.closed));
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), graceMs)));
    if ((await Promise.race([drained, timedOut])) === 'timeout') {
      this.logger.warn({ event: 'close-grace-over', sessions: this.connectionSet.size }, 'close: ending sessions still open after the grace period');
      for (const connection of this.connectionSet) connection.session.terminate('server closing', true);
      await Promise.all([...this.connectionSet].map((c) => c.session.closed));
    }
    clearTimeout(timer);
    for (const connection of this.connectionSet) connection.stream.destroy();
    await stopped;
    if (unixPath !== undefined) await removeOwnSocket(unixPath, this.socketFile, this.logger);
    this.logger.info({ event: 'closed' }, 'closed');
  }

  /**
   * At the limit, a new connection takes the slot of the longest-held one that is not being
   * served (never negotiated, or stuck inside a packet); with none, it is refused.
   */
  private admit(stream: AcceptedStream): boolean {
    if (this.connectionSet.size < this.options.maxConnections) return true;
    const now = Date.now();
    let victim: ServerConnection | undefined;
    for (const connection of this.connectionSet) {
      if (connection.stalled(now) && (victim === undefined || connection.connectedAt < victim.connectedAt)) victim = connection;
    }
    if (victim === undefined) {
      this.refusals.refused(stream.remoteAddress);
      stream.destroy();
      return false;
    }
    victim.session.logger.warn({ event: 'evicted' }, 'closing the connection: its slot is needed and it is not being served');
    victim.stream.destroy();
    // The slot is freed when its close event runs; count it as free now.
    this.connectionSet.delete(victim);
    return true;
  }

  private accept(stream: AcceptedStream): void {
    if (this.closing) {
      stream.destroy();
      return;
    }
    if (!this.admit(stream)) return;
    const connection = new ServerConnection(stream, this.options);
    // One options object for every session: checked once, not per connection.
    const session = new MilterSession(this.sessionOptions, connection, this.nextId++);
    connection.session = session;
    this.connectionSet.add(connection);
    stream.start({
      // Straight to the session: one call fewer per read keeps the read path within V8's inlining budget.
      read: (buffer, length, borrowed) => session.receive(buffer, borrowed, length),
      end: () => session.end(),
      error: (err) => {
        session.logger.warn({ event: 'connection-error', err }, 'connection error');
        session.terminate(`connection error: ${err.message}`);
      },
      close: () => session.terminate('connection closed'),
      drained: () => connection.drained(),
    });
    void session.closed.then(() => {
      this.connectionSet.delete(connection);
      if (stream.destroyed) return;
      stream.end();
      // Replies the MTA does not read would hold the connection forever, out of the deadline
      // sweep's sight: it gets the write-stall timeout to read them, then is cut off.
      if (!stream.destroyed) setTimeout(() => stream.destroy(), this.options.writeStallTimeout).unref();
    });
  }
}
