/**
 * The Courier global filter daemon's socket side: courierfilter's lifecycle (socket named after
 * the active link, created as `.NAME` then renamed, mode 0660; fd 3 closed once it is live;
 * stop on stdin EOF with a bounded drain) and the per-connection exchange (read the request
 * until the empty line, answer newline-terminated lines, close).
 *
 * @packageDocumentation
 */
import { chmod, rename, stat, unlink } from 'node:fs/promises';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { shapeAcceptedSockets } from '../net/accept-path.js';
import { readInto } from '../net/read-path.js';
import type { CourierLogger } from './logging.js';
import { closeReadyFd } from './ready-fd.js';
import { formatReply, parseModuleReply, type FilterReply } from './reply.js';
import { confineRequest, MAX_REQUEST_BYTES, parseRequest, requestLength, spoolDirectory, type FilterRequest } from './request.js';
import type { SocketDirectory } from './settings.js';

/** The longest path a unix socket can be bound to on Linux (`sun_path` is 108 bytes). */
export const MAX_SOCKET_PATH_BYTES = 107;

/** How long a connection may stay open after the reply was sent (Courier closes at once). */
const LINGER_AFTER_REPLY_MS = 5000;

/**
 * Connections still sending their request, per message slot. Courier writes its request as soon
 * as it connects, so only silent or hostile peers stay here; past the bound the oldest one is
 * dropped, so that they can never keep a real message out.
 */
const WAITING_CONNECTIONS_PER_SLOT = 4;

/**
 * Requests are read into this one buffer, shared by every connection (each read is handled before
 * the next one is made), rather than into a new buffer per read; see `readInto`.
 */
const sharedReadBuffer = Buffer.allocUnsafe(MAX_REQUEST_BYTES);

/** Dropped silent connections are logged at most this often (a flood must not flood syslog). */
const DROP_LOG_INTERVAL_MS = 10_000;

/** Options for {@link CourierFilterDaemon}. */
export interface CourierDaemonOptions {
  /** Socket name: must equal the name of the link in `filters/active/`. */
  name: string;
  /** Courier's `localstatedir` (parent of `allfilters/` and `filters/`). */
  localstatedir: string;
  socketDirectory: SocketDirectory;
  /** Answers one message; should not throw (a throw is answered with `errorReply`). */
  handler: (request: FilterRequest) => Promise<FilterReply>;
  logger: CourierLogger;
  /**
   * Concurrent messages; a request beyond it gets `busyReply` at once. Connections that have not
   * sent a complete request yet do not count (they are bounded and timed separately).
   */
  maxConnections: number;
  /** Time a connection has to send its whole request (Courier sends it at once). */
  requestTimeoutMs: number;
  shutdownTimeoutMs: number;
  /** Reply for internal failures and malformed requests. */
  errorReply: string;
  busyReply: string;
  /** Stream whose end means "stop" (courierfilter's pipe on stdin); none to disable. */
  stopOn?: Readable;
  /** Close fd 3 once listening (true when started by courierfilter). */
  closeReadyFd: boolean;
}

/** Thrown when another live process already serves the socket name. */
export class AlreadyRunningError extends Error {
  override name = 'AlreadyRunningError';
}

function canConnect(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createConnection(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
}

async function unlinkIfPresent(path: string): Promise<void> {
  await unlink(path).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'ENOENT') throw error;
  });
}

/** Runs the filter socket until stopped. */
export class CourierFilterDaemon {
  private server: Server | undefined;
  private socketInode: number | undefined;
  /** Connections whose message is being filtered. */
  private readonly active = new Set<Socket>();
  /** Connections still sending their request, oldest first. */
  private readonly waiting = new Set<Socket>();
  private droppedSinceLog = 0;
  private lastDropLog = 0;
  private stopping: Promise<void> | undefined;
  private resolveStopped!: () => void;
  /** Resolves once the daemon has stopped (after {@link stop} or stdin EOF). */
  readonly stopped: Promise<void> = new Promise((resolve) => (this.resolveStopped = resolve));

  constructor(private readonly options: CourierDaemonOptions) {}

  /** Path of the live socket. */
  get socketPath(): string {
    return join(this.options.localstatedir, this.options.socketDirectory, this.options.name);
  }

  /** Messages being handled right now. */
  get activeConnections(): number {
    return this.active.size;
  }

  /**
   * Creates the socket (`.NAME`, listen, chmod 0660, rename to `NAME`, remove `NAME` from the
   * other directory), then closes fd 3 and starts watching for the stop signal.
   */
  async start(): Promise<void> {
    const { name, localstatedir, socketDirectory, logger } = this.options;
    if (!name || name.includes('/') || name.startsWith('.')) throw new Error(`invalid filter name ${JSON.stringify(name)}`);
    const directory = join(localstatedir, socketDirectory);
    const otherDirectory = join(localstatedir, socketDirectory === 'allfilters' ? 'filters' : 'allfilters');
    const finalPath = join(directory, name);
    const hiddenPath = join(directory, '.' + name);
    if (Buffer.byteLength(hiddenPath) > MAX_SOCKET_PATH_BYTES) {
      throw new Error(`socket path ${hiddenPath} is longer than ${MAX_SOCKET_PATH_BYTES} bytes`);
    }
    if (await canConnect(finalPath)) throw new AlreadyRunningError(`another process already answers on ${finalPath}`);

    await unlinkIfPresent(hiddenPath);
    const server = createServer({ allowHalfOpen: true }, (socket) => this.accept(socket));
    server.on('error', (error) => logger.error({ event: 'socket-error', err: error }, `socket error: ${error.message}`));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ path: hiddenPath, backlog: 64 }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
    // Courier connects once per message: what a connection costs is paid on every message.
    shapeAcceptedSockets(server);
    await chmod(hiddenPath, 0o660);
    await rename(hiddenPath, finalPath);
    this.socketInode = (await stat(finalPath)).ino;
    await unlinkIfPresent(join(otherDirectory, name));
    if (this.options.closeReadyFd) closeReadyFd();
    logger.info({ event: 'listening', socket: finalPath }, `listening on ${finalPath}`);

    const stopOn = this.options.stopOn;
    if (stopOn) {
      const onEnd = () => void this.stop('stdin closed');
      stopOn.once('end', onEnd);
      stopOn.once('close', onEnd);
      stopOn.once('error', onEnd);
      // Courier never writes to the pipe; read (and drop) anything so that EOF is seen.
      stopOn.on('data', () => undefined);
      stopOn.resume();
    }
  }

  /**
   * Stops accepting, removes the socket (when it is still ours), lets in-flight messages finish
   * for up to `shutdownTimeoutMs`, then closes whatever is left.
   */
  stop(reason = 'stop requested'): Promise<void> {
    this.stopping ??= this.shutdown(reason);
    return this.stopping;
  }

  private async shutdown(reason: string): Promise<void> {
    const { logger, shutdownTimeoutMs } = this.options;
    logger.info({ event: 'stopping', reason, active: this.active.size }, `stopping (${reason}); ${this.active.size} message(s) in progress`);
    const closed = this.server ? new Promise<void>((resolve) => this.server!.close(() => resolve())) : Promise.resolve();
    const current = await stat(this.socketPath).catch(() => undefined);
    if (current && current.ino === this.socketInode) await unlinkIfPresent(this.socketPath);
    if (this.active.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      const drained = new Promise<void>((resolve) => {
        const check = () => (this.active.size === 0 ? resolve() : setTimeout(check, 20).unref());
        check();
      });
      const expired = new Promise<void>((resolve) => (timer = setTimeout(resolve, shutdownTimeoutMs)));
      await Promise.race([drained, expired]);
      clearTimeout(timer);
      if (this.active.size > 0) {
        logger.warn({ event: 'shutdown-timeout', abandoned: this.active.size }, `closing ${this.active.size} unfinished connection(s) after ${shutdownTimeoutMs} ms`);
        for (const socket of this.active) socket.destroy();
      }
    }
    for (const socket of this.waiting) socket.destroy();
    await closed;
    logger.info({ event: 'stopped' }, 'stopped');
    this.resolveStopped();
  }

  private accept(socket: Socket): void {
    const { logger, maxConnections } = this.options;
    socket.on('error', (error) => logger.warn({ event: 'connection-error', err: error }, `connection error: ${error.message}`));
    if (this.stopping) {
      socket.destroy();
      return;
    }
    if (this.waiting.size >= maxConnections * WAITING_CONNECTIONS_PER_SLOT) this.dropOldestWaiting();
    this.waiting.add(socket);
    socket.once('close', () => {
      this.waiting.delete(socket);
      this.active.delete(socket);
    });
    void this.serve(socket);
  }

  private dropOldestWaiting(): void {
    const oldest = this.waiting.values().next().value;
    if (!oldest) return;
    this.waiting.delete(oldest);
    oldest.destroy();
    this.droppedSinceLog++;
    const now = Date.now();
    if (now - this.lastDropLog >= DROP_LOG_INTERVAL_MS) {
      this.options.logger.warn(
        { event: 'silent-connections-dropped', count: this.droppedSinceLog },
        `dropped ${this.droppedSinceLog} connection(s) that sent no request, to make room for new ones`,
      );
      this.droppedSinceLog = 0;
      this.lastDropLog = now;
    }
  }

  private async serve(socket: Socket): Promise<void> {
    const { logger, localstatedir } = this.options;
    let request: FilterRequest;
    try {
      request = await this.readRequest(socket);
    } catch (error) {
      this.waiting.delete(socket);
      logger.error({ event: 'request-failed', err: error }, `request failed: ${(error as Error).message}`);
      this.answer(socket, parseModuleReply(this.options.errorReply)!);
      return;
    }
    this.waiting.delete(socket);
    if (socket.destroyed) return;
    if (this.active.size >= this.options.maxConnections) {
      logger.warn({ event: 'busy', active: this.active.size }, `busy: ${this.active.size} messages in progress, answering ${this.options.busyReply}`);
      this.answer(socket, parseModuleReply(this.options.busyReply)!);
      return;
    }
    this.active.add(socket);
    let answer: FilterReply;
    try {
      answer = await this.options.handler(await confineRequest(request, spoolDirectory(localstatedir)));
    } catch (error) {
      logger.error({ event: 'request-failed', err: error, request }, `request failed: ${(error as Error).message}`);
      answer = parseModuleReply(this.options.errorReply)!;
    }
    this.answer(socket, answer);
  }

  /** Writes the reply and half-closes; a peer that never closes its side is cut off after a while. */
  private answer(socket: Socket, reply: FilterReply): void {
    this.active.delete(socket);
    if (socket.destroyed) return;
    // Whatever the peer still sends is not read into memory.
    socket.resume();
    socket.end(formatReply(reply));
    const linger = setTimeout(() => socket.destroy(), LINGER_AFTER_REPLY_MS).unref();
    // Courier closes at once: the timer must not hold the closed connection in memory for seconds.
    socket.once('close', () => clearTimeout(linger));
  }

  private readRequest(socket: Socket): Promise<FilterRequest> {
    const { localstatedir, requestTimeoutMs } = this.options;
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      let done = false;
      const finish = (error?: Error, request?: FilterRequest) => {
        done = true;
        clearTimeout(timer);
        socket.off('end', onEnd);
        if (error) reject(error);
        else resolve(request!);
      };
      const onRead = (buffer: Buffer, length: number, borrowed: boolean) => {
        // Whatever the peer sends after its request is dropped.
        if (done) return;
        const chunk = buffer.subarray(0, length);
        size += length;
        // Courier writes its request at once: it nearly always comes in one read, parsed where it lies.
        const received = chunks.length === 0 ? chunk : Buffer.concat([...chunks, chunk], size);
        const requestBytes = requestLength(received);
        if (requestBytes !== -1) {
          try {
            finish(undefined, parseRequest(received.subarray(0, requestBytes), localstatedir));
          } catch (error) {
            finish(error as Error);
          }
        } else if (size > MAX_REQUEST_BYTES) {
          finish(new Error(`request exceeds ${MAX_REQUEST_BYTES} bytes without an empty line`));
        } else {
          // A borrowed buffer is overwritten by the next read: what is kept is copied.
          chunks.push(borrowed ? Buffer.from(chunk) : chunk);
        }
      };
      const onEnd = () => finish(new Error('connection closed before the request was complete'));
      const timer = setTimeout(() => finish(new Error(`no complete request within ${requestTimeoutMs} ms`)), requestTimeoutMs);
      readInto(socket, sharedReadBuffer, onRead);
      socket.once('end', onEnd);
    });
  }
}
