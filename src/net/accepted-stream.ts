/**
 * What a server needs of a connection it accepted: read into a buffer, write replies, pause and
 * resume reading, end once the replies are out, or close at once. Two implementations carry it:
 * {@link SocketStream} over Node's public `net.Socket`, and `HandleStream` (`./handle-stream.ts`)
 * over the socket's handle alone, which spares a connection the Socket and its stream machinery.
 * A server is written once against this interface and behaves alike on both.
 */
import type net from 'node:net';
import { readInto, type ReadHandler, type ReadPath } from './read-path.js';
import { DirectWriter, socketWriteHandle, type WritePath } from './write-path.js';

/** What an accepted stream reports to its server; set once, by {@link AcceptedStream.start}. */
export interface StreamHandlers {
  /** Bytes arrived (see {@link ReadHandler}). */
  read: ReadHandler;
  /** The peer ended its side; the stream ends its own once the replies are out. */
  end(): void;
  /** A read or write failed; `close` follows. */
  error(error: Error): void;
  /** The stream is closed: no read, write or handler call follows. */
  close(): void;
  /** Every write has reached the kernel, after some had to wait. */
  drained(): void;
}

/** An accepted connection, as a server uses it. */
export interface AcceptedStream {
  /** True once closed, or closing: writes are dropped. */
  readonly destroyed: boolean;
  /** True while reading (not paused). */
  readonly reading: boolean;
  /** The peer's IP address (TCP); undefined for a unix socket or when unknown. */
  readonly remoteAddress: string | undefined;
  /** Bytes written but not yet taken by the kernel. */
  readonly unwritten: number;
  /** How the stream reads, writes and was built, for tests and the log. */
  readonly paths: { read: ReadPath | 'handle'; write: WritePath };
  /** Starts reading and reporting to `handlers`. */
  start(handlers: StreamHandlers): void;
  /** Queues `data` after every earlier write; dropped once the stream is closed. */
  write(data: Buffer): void;
  pause(): void;
  resume(): void;
  /** Closes once every write has reached the kernel. */
  end(): void;
  /** Closes now; with `error`, reports it first. */
  destroy(error?: Error): void;
}

/** An accepted `net.Socket`, reading into the server's shared buffer and writing through its handle where Node allows. */
export class SocketStream implements AcceptedStream {
  private readonly direct: DirectWriter | undefined;
  private handlers: StreamHandlers | undefined;
  private readPath: ReadPath = 'stream';

  /**
   * @param readBuffer the server's shared read buffer (see `./read-path.ts`); undefined reads through `'data'`.
   * @param directWrites write through the socket's handle where this Node allows it.
   */
  constructor(
    readonly socket: net.Socket,
    private readonly readBuffer: Buffer | undefined,
    directWrites = true,
  ) {
    const handle = directWrites ? socketWriteHandle(socket) : undefined;
    this.direct = handle === undefined ? undefined : DirectWriter.for(handle, () => this.handlers?.drained(), (error) => this.destroy(error));
  }

  get destroyed(): boolean {
    return this.socket.destroyed;
  }

  get reading(): boolean {
    return !this.socket.isPaused();
  }

  get remoteAddress(): string | undefined {
    return this.socket.remoteAddress;
  }

  get unwritten(): number {
    return this.direct === undefined ? this.socket.writableLength : this.direct.pending;
  }

  get paths(): AcceptedStream['paths'] {
    return { read: this.readPath, write: this.direct === undefined ? 'stream' : 'direct' };
  }

  start(handlers: StreamHandlers): void {
    this.handlers = handlers;
    const socket = this.socket;
    this.readPath = readInto(socket, this.readBuffer, handlers.read);
    socket.on('end', () => handlers.end());
    socket.on('error', (error) => handlers.error(error));
    socket.on('close', () => handlers.close());
    if (this.direct === undefined) socket.on('drain', () => handlers.drained());
  }

  write(data: Buffer): void {
    if (this.socket.destroyed) return;
    if (this.direct !== undefined) this.direct.write(data);
    else this.socket.write(data);
  }

  pause(): void {
    if (!this.socket.destroyed) this.socket.pause();
  }

  resume(): void {
    if (!this.socket.destroyed) this.socket.resume();
  }

  end(): void {
    this.socket.end();
  }

  destroy(error?: Error): void {
    this.socket.destroy(error);
  }
}
