/**
 * The milter server: listens on a socket spec and runs one {@link MilterSession} per MTA
 * connection. It owns the transport concerns only: unix socket lifecycle (stale socket removal,
 * mode, removal at close), connection limit, idle timeout, graceful close.
 */
import { promises as fs } from 'node:fs';
import net from 'node:net';
import { silentLogger, type Logger } from '../log.js';
import { MilterSession, type SessionOptions } from '../milter/session.js';
import { compileFilter } from '../milter/filter.js';
import { formatSocketAddress, parseSocketSpec, type SocketAddress } from '../net/socket-spec.js';
import { ClusterPrimary, isClusterWorker, onPrimaryClose } from './cluster.js';

/** Options of a {@link MilterServer}. */
export interface ServerOptions extends Omit<SessionOptions, 'id'> {
  /** Where to listen: `unix:/path`, `inet:port@host`, `inet:host:port`, ... (default `inet:8890@127.0.0.1`). */
  socket?: string;
  /** Mode of a unix socket (default 0o660). */
  socketMode?: number;
  /** Most connections served at once; further ones are closed at once (default 1000). */
  maxConnections?: number;
  /** Close a connection when the MTA sends nothing for this long, in ms (default 7 210 000, as libmilter). */
  idleTimeout?: number;
  /** Listen backlog. */
  backlog?: number;
  /**
   * Worker processes sharing the listening socket (default 0: serve in this process). The script
   * that creates the server runs again in each worker, so construct and listen the same way there.
   */
  workers?: number;
}

/** Default socket: loopback TCP, which both Postfix and Sendmail reach without permission changes. */
export const DEFAULT_SOCKET = 'inet:8890@127.0.0.1';

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
  private readonly sessionOptions: SessionOptions;
  private readonly sessions = new Set<MilterSession>();
  private readonly sockets = new Set<net.Socket>();
  private server: net.Server | undefined;
  private primary: ClusterPrimary | undefined;
  private nextId = 1;
  private closing = false;
  /** In a worker process the primary owns the socket file. */
  private readonly ownsSocketFile = !isClusterWorker();

  constructor(private readonly options: ServerOptions) {
    this.address = parseSocketSpec(options.socket ?? DEFAULT_SOCKET);
    this.logger = options.logger ?? silentLogger;
    // Compile once: nothing per connection that can be done at start-up.
    this.sessionOptions = { ...options, filter: compileFilter(options.filter) };
  }

  /** Connections being served. */
  get connections(): number {
    return this.sessions.size;
  }

  /** Starts listening; resolves with the address in Postfix's spelling (e.g. `inet:127.0.0.1:8890`). */
  async listen(): Promise<string> {
    if (this.server || this.primary) throw new Error('server already listening');
    if (this.address.kind === 'unix' && this.ownsSocketFile) await removeStaleSocket(this.address.path);
    if ((this.options.workers ?? 0) > 0 && this.ownsSocketFile) return this.listenPrimary(this.options.workers!);
    const server = net.createServer({ noDelay: true, pauseOnConnect: false }, (socket) => this.accept(socket));
    server.maxConnections = this.options.maxConnections ?? 1000;
    server.on('drop', (info) => this.logger.warn({ remote: info?.remoteAddress }, 'connection refused: maxConnections reached'));
    server.on('error', (err) => this.logger.error({ err: err.message }, 'server error'));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      const done = (): void => {
        server.off('error', reject);
        resolve();
      };
      if (this.address.kind === 'unix') server.listen({ path: this.address.path, backlog: this.options.backlog }, done);
      else server.listen({ host: this.address.host, port: this.address.port, backlog: this.options.backlog }, done);
    });
    this.server = server;
    this.startIdleSweep();
    if (this.address.kind === 'unix' && this.ownsSocketFile) await fs.chmod(this.address.path, this.options.socketMode ?? 0o660);
    if (!this.ownsSocketFile) onPrimaryClose((graceMs) => this.close(graceMs));
    const bound = server.address();
    const where = typeof bound === 'object' && bound !== null ? formatSocketAddress({ kind: 'inet', host: bound.address, port: bound.port }) : formatSocketAddress(this.address);
    this.logger.info({ socket: where, pid: process.pid }, 'listening');
    return where;
  }

  /**
   * Ends sessions whose MTA has been silent for idleTimeout. One timer per server, checked a few
   * times per period, rather than a timer refreshed on every read of every connection. A session
   * waiting on its own callback is not idle: the callback timeout covers it.
   */
  private startIdleSweep(): void {
    const idleTimeout = this.options.idleTimeout ?? 7_210_000;
    const timer = setInterval(() => {
      const deadline = Date.now() - idleTimeout;
      for (const session of this.sessions) {
        if (session.lastActivity < deadline && session.idle) session.terminate('idle timeout');
      }
    }, Math.max(10, Math.min(idleTimeout / 4, 60_000)));
    timer.unref();
    this.server!.once('close', () => clearInterval(timer));
  }

  private async listenPrimary(workers: number): Promise<string> {
    this.primary = new ClusterPrimary(workers, this.logger);
    const bound = await this.primary.start();
    if (this.address.kind === 'unix') await fs.chmod(this.address.path, this.options.socketMode ?? 0o660);
    const where = this.address.kind === 'inet' && bound ? formatSocketAddress({ kind: 'inet', host: this.address.host, port: bound.port }) : formatSocketAddress(this.address);
    if (bound && this.address.kind === 'inet') this.boundPort = bound.port;
    this.logger.info({ socket: where, workers }, 'listening with worker processes');
    return where;
  }

  private boundPort: number | undefined;

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
  async close(graceMs = 30_000): Promise<void> {
    if (this.closing) return;
    if (this.primary) {
      this.closing = true;
      await this.primary.close(graceMs);
      if (this.address.kind === 'unix') await fs.rm(this.address.path, { force: true });
      this.logger.info({}, 'closed');
      return;
    }
    if (!this.server) return;
    this.closing = true;
    const server = this.server;
    const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
    const drained = Promise.all([...this.sessions].map((s) => s.closed));
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), graceMs)));
    if ((await Promise.race([drained, timedOut])) === 'timeout') {
      this.logger.warn({ sessions: this.sessions.size }, 'close: ending sessions still open after the grace period');
      for (const session of this.sessions) session.terminate('server closing', true);
      await Promise.all([...this.sessions].map((s) => s.closed));
    }
    clearTimeout(timer);
    for (const socket of this.sockets) socket.destroy();
    await stopped;
    if (this.address.kind === 'unix' && this.ownsSocketFile) await fs.rm(this.address.path, { force: true });
    this.logger.info({}, 'closed');
  }

  private accept(socket: net.Socket): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    const id = this.nextId++;
    socket.setNoDelay(true);
    this.sockets.add(socket);
    const session = new MilterSession(
      { ...this.sessionOptions, id },
      {
        write: (data) => {
          if (!socket.destroyed) socket.write(data);
        },
        close: () => socket.end(),
        pause: () => socket.pause(),
        resume: () => socket.resume(),
      },
    );
    this.sessions.add(session);
    socket.on('data', (chunk: Buffer) => session.receive(chunk));
    socket.on('end', () => session.end());
    socket.on('error', (err) => {
      session.logger.warn({ err: err.message }, 'connection error');
      session.terminate(`connection error: ${err.message}`);
    });
    socket.on('close', () => {
      this.sockets.delete(socket);
      session.terminate('connection closed');
    });
    void session.closed.then(() => {
      this.sessions.delete(session);
      if (!socket.destroyed) socket.end();
    });
  }
}

/** Removes a unix socket left by a previous run, refusing to remove anything that is not a socket. */
async function removeStaleSocket(path: string): Promise<void> {
  let stat;
  try {
    stat = await fs.lstat(path);
  } catch {
    return;
  }
  if (!stat.isSocket()) throw new Error(`${path} exists and is not a socket; refusing to replace it`);
  const inUse = await new Promise<boolean>((resolve) => {
    const probe = net.connect({ path });
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (inUse) throw new Error(`${path} is in use by another process`);
  await fs.rm(path, { force: true });
}
