/**
 * An accepted connection served through its handle alone (the `Pipe` or `TCP` object of Node's
 * bindings that a `net.Socket` wraps), with no `net.Socket` at all. Building a Socket, with its
 * Readable and Writable states, and tearing it down again cost more than everything else a
 * connection does in a milter server; with a new connection per message (what Postfix's
 * `non_smtpd_milters` and many Sendmail setups do) that is paid per message. The handle reads into
 * the server's shared buffer, writes through `DirectWriter`, and is closed directly.
 *
 * Node offers no public way to do this. The methods used are the ones Node's own `net.Socket`
 * calls on the same handle (`readStart`, `readStop`, `useUserBuffer`, `onread`, `close`,
 * `writeBuffer`). The binding is looked up once per process and each accepted handle is checked
 * for the methods (a few property reads); where any is missing, that connection is accepted as a
 * `net.Socket`, as before (`./accept-path.ts`).
 */
import { getSystemErrorMap } from 'node:util';
import type { AcceptedStream, StreamHandlers } from './accepted-stream.js';
import { DirectWriter, isWritableHandle, streamWrap, systemError, type StreamWrapBinding, type WritableHandle } from './write-path.js';

/** The methods of an accepted handle this uses, by the names Node's bindings give them. */
export interface StreamHandle extends WritableHandle {
  readStart(): number;
  readStop(): number;
  useUserBuffer(buffer: Uint8Array): void;
  /** Called by the handle for each read; the count is in the binding's state (see `kReadBytesOrError`). */
  onread: (() => void) | null;
  close(callback?: () => void): void;
  /** TCP handles only. */
  setNoDelay?(enable: boolean): number;
  /** TCP handles only: fills `out` with the peer's address. */
  getpeername?(out: { address?: string }): number;
}

/** The error code libuv reports for the end of a stream, found once (it is -4095 on every platform Node supports). */
const END_OF_STREAM = [...getSystemErrorMap()].find(([, [name]]) => name === 'EOF')?.[0];

/** The owner of the server's accept counts, as `net.Server` keeps them (so `close()` waits for these connections too). */
export interface ConnectionCounter {
  _connections: number;
  _emitCloseIfDrained(): void;
}

/** True when `handle` (an accepted client handle) can be served as a {@link HandleStream}. */
export function canServeHandle(handle: unknown): handle is StreamHandle {
  if (streamWrap() === null || END_OF_STREAM === undefined || !isWritableHandle(handle)) return false;
  const candidate = handle as unknown as Partial<StreamHandle>;
  return (
    typeof candidate.readStart === 'function' &&
    typeof candidate.readStop === 'function' &&
    typeof candidate.useUserBuffer === 'function' &&
    typeof candidate.close === 'function' &&
    'onread' in candidate
  );
}

function reportClosed(handlers: StreamHandlers, error: Error | undefined): void {
  if (error !== undefined) handlers.error(error);
  handlers.close();
}

/** A connection served through its handle; build it only for a handle {@link canServeHandle} accepts. */
export class HandleStream implements AcceptedStream {
  private readonly binding: StreamWrapBinding;
  private readonly writer: DirectWriter;
  private handlers: StreamHandlers | undefined;
  private closed = false;
  private endRequested = false;
  private paused = false;
  private peer: string | undefined;

  /**
   * @param readBuffer the server's shared read buffer: each read is handled before the next is made.
   * @param counter the server whose connection count this connection joins until it is closed.
   */
  constructor(
    private readonly handle: StreamHandle,
    private readonly readBuffer: Buffer,
    private readonly counter: ConnectionCounter,
  ) {
    this.binding = streamWrap()!;
    this.writer = DirectWriter.for(handle, this.drained, (error) => this.destroy(error))!;
    counter._connections++;
  }

  get destroyed(): boolean {
    return this.closed;
  }

  get reading(): boolean {
    return this.handlers !== undefined && !this.paused && !this.closed;
  }

  get remoteAddress(): string | undefined {
    if (this.peer === undefined && !this.closed && this.handle.getpeername !== undefined) {
      const out: { address?: string } = {};
      if (this.handle.getpeername(out) === 0) this.peer = out.address;
    }
    return this.peer;
  }

  get unwritten(): number {
    return this.writer.pending;
  }

  get paths(): AcceptedStream['paths'] {
    return { read: 'handle', write: 'direct' };
  }

  start(handlers: StreamHandlers): void {
    this.handlers = handlers;
    if (this.closed) return;
    this.handle.useUserBuffer(this.readBuffer);
    this.handle.onread = this.onRead;
    if (!this.paused) this.startReading();
  }

  write(data: Buffer): void {
    if (!this.closed) this.writer.write(data);
  }

  pause(): void {
    if (this.paused) return;
    this.paused = true;
    if (this.handlers !== undefined && !this.closed) this.handle.readStop();
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    if (this.handlers !== undefined && !this.closed) this.startReading();
  }

  end(): void {
    if (this.writer.pending === 0) this.destroy();
    else this.endRequested = true;
  }

  destroy(error?: Error): void {
    if (this.closed) return;
    this.closed = true;
    // No callback: the handle then closes without calling back into JavaScript.
    this.handle.close();
    // Uncounted at once, as Node uncounts a Socket when it is destroyed.
    this.counter._connections--;
    this.counter._emitCloseIfDrained();
    const handlers = this.handlers;
    // Reported after this call returns, as a Socket reports its 'error' and 'close'.
    if (handlers !== undefined) process.nextTick(reportClosed, handlers, error);
  }

  private startReading(): void {
    const status = this.handle.readStart();
    if (status !== 0) this.destroy(systemError(status, 'read'));
  }

  /** The handle's read callback: its return value would be taken for a new buffer, so it returns nothing. */
  private readonly onRead = (): void => {
    const nread = this.binding.streamBaseState[this.binding.kReadBytesOrError]!;
    if (nread > 0) {
      this.handlers!.read(this.readBuffer, nread, true);
      return;
    }
    if (nread === 0 || this.closed) return;
    this.handle.readStop();
    if (nread === END_OF_STREAM) {
      this.handlers!.end();
      // Not half-open: like a Socket with `allowHalfOpen: false`, the stream ends its side too.
      this.end();
    } else this.destroy(systemError(nread, 'read'));
  };

  private readonly drained = (): void => {
    if (this.endRequested) this.destroy();
    else this.handlers?.drained();
  };
}
