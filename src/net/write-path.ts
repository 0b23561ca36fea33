/**
 * How the server writes its replies. A reply is a few bytes, written once per read; through
 * `socket.write` each one also pays for Node's Writable stream (its state, a write request object,
 * callbacks and bookkeeping), which measured as much CPU as a third of the write system call. The
 * direct path hands the bytes to the socket's handle the way Node's own stream code does, with a
 * write request of Node's `stream_wrap` binding, and needs none of that when the kernel takes
 * the bytes at once, which it does for every reply unless the MTA stops reading.
 *
 * Node offers no public way to do this, so the binding is looked up once per process and checked
 * to have what is used; where it does not (another Node version, a permission model that refuses
 * `process.binding`), the public `socket.write` is used. Order is kept on both paths: a write the
 * kernel does not take at once is queued by libuv, and every later write, direct or not, goes
 * behind it.
 */
import type net from 'node:net';
import { getSystemErrorName } from 'node:util';

/** `direct`: through the socket's handle; `stream`: the public `socket.write`. */
export type WritePath = 'direct' | 'stream';

/** A write request of Node's stream binding, as Node's own stream code fills it in. */
interface WriteRequest {
  handle: unknown;
  oncomplete: (this: WriteRequest, status: number) => void;
  async: boolean;
  bytes: number;
  buffer: Buffer | null;
  /** Set here: the writer the request belongs to. */
  writer?: DirectWriter;
}

/** What is used of Node's `stream_wrap` binding: write requests and the state its calls report through. */
export interface StreamWrapBinding {
  WriteWrap: new () => WriteRequest;
  streamBaseState: Int32Array;
  /** Index in `streamBaseState`: whether the last write was queued rather than taken at once. */
  kLastWriteWasAsync: number;
  /** Index in `streamBaseState`: the byte count (or negative error) of the read being reported. */
  kReadBytesOrError: number;
}

/** The methods of a socket's handle this uses. */
export interface WritableHandle {
  writeBuffer(request: WriteRequest, data: Uint8Array): number;
  readonly writeQueueSize: number;
}

/** An Error as Node makes them for a failed system call: `write EPIPE`, with code, errno and syscall. */
export function systemError(status: number, syscall: string): Error {
  const name = getSystemErrorName(status);
  return Object.assign(new Error(`${syscall} ${name}`), { code: name, errno: status, syscall });
}

let binding: StreamWrapBinding | null | undefined;

/** Node's stream binding, once per process; null when this Node does not offer what is used. */
export function streamWrap(): StreamWrapBinding | null {
  if (binding !== undefined) return binding;
  binding = null;
  try {
    const found = (process as { binding?: (name: string) => unknown }).binding?.('stream_wrap') as Partial<StreamWrapBinding> | undefined;
    if (typeof found?.WriteWrap === 'function' && found.streamBaseState instanceof Int32Array && typeof found.kLastWriteWasAsync === 'number' && typeof found.kReadBytesOrError === 'number') {
      binding = found as StreamWrapBinding;
    }
  } catch {
    // Refused (a permission model) or removed: the public path is used.
  }
  return binding;
}

/** The handle of `socket` when replies can be written through it directly, else undefined. */
export function socketWriteHandle(socket: net.Socket): WritableHandle | undefined {
  const handle = (socket as net.Socket & { _handle?: unknown })._handle;
  return streamWrap() !== null && isWritableHandle(handle) ? handle : undefined;
}

/** True when `handle` has what a direct write uses. */
export function isWritableHandle(handle: unknown): handle is WritableHandle {
  const candidate = handle as Partial<WritableHandle> | null | undefined;
  return typeof candidate?.writeBuffer === 'function' && typeof candidate.writeQueueSize === 'number';
}

/** True when replies to `socket` can be written directly. */
export function canWriteDirect(socket: net.Socket): boolean {
  return socketWriteHandle(socket) !== undefined;
}

function onWriteComplete(this: WriteRequest, status: number): void {
  this.buffer = null;
  this.writer?.completed(status);
}

/**
 * Writes one connection's replies through its handle. For a `net.Socket`, only where its Writable
 * side is not used for anything else until it is ended (`socket.end` queues its shutdown behind
 * these writes).
 */
export class DirectWriter {
  /** A request the kernel took at once, so Node never bound it: it serves the next write. */
  private spare: WriteRequest | undefined;
  /** Writes the kernel did not take at once, still queued in libuv. */
  private queued = 0;

  /** Set by the first failure: later writes are dropped. */
  private failed = false;

  private constructor(
    private readonly handle: WritableHandle,
    private readonly binding: StreamWrapBinding,
    private readonly onDrained: () => void,
    private readonly onFailed: (error: Error) => void,
  ) {}

  /**
   * A writer for `handle`, or undefined when this Node lacks the stream binding.
   * @param onDrained called when every queued write has reached the kernel.
   * @param onFailed called once, with the first write that fails; the caller closes the connection.
   */
  static for(handle: WritableHandle, onDrained: () => void, onFailed: (error: Error) => void): DirectWriter | undefined {
    const found = streamWrap();
    return found === null ? undefined : new DirectWriter(handle, found, onDrained, onFailed);
  }

  /** Bytes accepted but not yet taken by the kernel. */
  get pending(): number {
    return this.queued === 0 ? 0 : this.handle.writeQueueSize;
  }

  write(data: Buffer): void {
    if (this.failed) return;
    const request = this.spare ?? this.newRequest();
    this.spare = undefined;
    request.bytes = data.length;
    const status = this.handle.writeBuffer(request, data);
    if (status !== 0) {
      this.fail(status);
      return;
    }
    if (this.binding.streamBaseState[this.binding.kLastWriteWasAsync] === 0) {
      this.spare = request;
      return;
    }
    // libuv holds a pointer into `data` until the write completes.
    request.async = true;
    request.buffer = data;
    this.queued++;
  }

  /** A queued write reached the kernel, or failed. */
  completed(status: number): void {
    this.queued--;
    if (status < 0) {
      this.fail(status);
      return;
    }
    if (this.queued === 0) this.onDrained();
  }

  private newRequest(): WriteRequest {
    const request = new this.binding.WriteWrap();
    request.handle = this.handle;
    request.oncomplete = onWriteComplete;
    request.async = false;
    request.bytes = 0;
    request.buffer = null;
    request.writer = this;
    return request;
  }

  private fail(status: number): void {
    if (this.failed) return;
    this.failed = true;
    this.onFailed(systemError(status, 'write'));
  }
}
