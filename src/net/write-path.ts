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

interface StreamWrapBinding {
  WriteWrap: new () => WriteRequest;
  streamBaseState: Int32Array;
  kLastWriteWasAsync: number;
}

/** The methods of a socket's handle this uses. */
interface WritableHandle {
  writeBuffer(request: WriteRequest, data: Uint8Array): number;
  readonly writeQueueSize: number;
}

let binding: StreamWrapBinding | null | undefined;

/** Node's stream binding, once per process; null when this Node does not offer what is used. */
function streamWrap(): StreamWrapBinding | null {
  if (binding !== undefined) return binding;
  binding = null;
  try {
    const found = (process as { binding?: (name: string) => unknown }).binding?.('stream_wrap') as Partial<StreamWrapBinding> | undefined;
    if (typeof found?.WriteWrap === 'function' && found.streamBaseState instanceof Int32Array && typeof found.kLastWriteWasAsync === 'number') {
      binding = found as StreamWrapBinding;
    }
  } catch {
    // Refused (a permission model) or removed: the public path is used.
  }
  return binding;
}

function writableHandle(socket: net.Socket): WritableHandle | undefined {
  const handle = (socket as net.Socket & { _handle?: Partial<WritableHandle> | null })._handle;
  if (typeof handle?.writeBuffer !== 'function' || typeof handle.writeQueueSize !== 'number') return undefined;
  return handle as WritableHandle;
}

/** True when replies to `socket` can be written directly. */
export function canWriteDirect(socket: net.Socket): boolean {
  return streamWrap() !== null && writableHandle(socket) !== undefined;
}

function onWriteComplete(this: WriteRequest, status: number): void {
  this.buffer = null;
  this.writer?.completed(status);
}

/**
 * Writes one socket's replies through its handle. Only for a socket whose Writable side is not
 * used for anything else until it is ended (`socket.end` queues its shutdown behind these writes).
 */
export class DirectWriter {
  /** A request the kernel took at once, so Node never bound it: it serves the next write. */
  private spare: WriteRequest | undefined;
  /** Writes the kernel did not take at once, still queued in libuv. */
  private queued = 0;

  private constructor(
    private readonly socket: net.Socket,
    private readonly handle: WritableHandle,
    private readonly binding: StreamWrapBinding,
    private readonly onDrained: () => void,
  ) {}

  /**
   * A writer for `socket`, or undefined when the direct path is not available.
   * @param onDrained called when every queued write has reached the kernel.
   */
  static for(socket: net.Socket, onDrained: () => void): DirectWriter | undefined {
    const found = streamWrap();
    const handle = writableHandle(socket);
    return found === null || handle === undefined ? undefined : new DirectWriter(socket, handle, found, onDrained);
  }

  /** Bytes accepted but not yet taken by the kernel. */
  get pending(): number {
    return this.queued === 0 ? 0 : this.handle.writeQueueSize;
  }

  write(data: Buffer): void {
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
    if (this.socket.destroyed) return;
    const name = getSystemErrorName(status);
    const error = Object.assign(new Error(`write ${name}`), { code: name, errno: status, syscall: 'write' });
    this.socket.destroy(error);
  }
}
