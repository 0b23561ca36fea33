/**
 * How the server reads its connections. The cheap way is Node's `onread` mechanism: the kernel
 * reads into one buffer the program reuses, and the bytes go straight to a callback, with no
 * allocation and no stream machinery per read. Node offers it publicly (the `onread` option) only
 * for sockets a program creates, not for the ones a server accepts, so on an accepted socket it is
 * switched on here through the same internals that option sets, after checking they are all
 * there. Where they are not (another Node version), the public `'data'` event is used.
 *
 * The buffer is reused by every read of every connection of a server: a read is handled
 * synchronously before the next one is made, and the receiver is told the chunk is borrowed, so
 * it copies what it keeps (see `FrameReader.push`).
 */
import type net from 'node:net';

/** Receives each read: the first `length` bytes of `buffer`; `borrowed` ones are overwritten by the next read. */
export type ReadHandler = (buffer: Buffer, length: number, borrowed: boolean) => void;

/** `reused-buffer`: reads into a shared buffer; `stream`: the public `'data'` event. */
export type ReadPath = 'reused-buffer' | 'stream';

/**
 * Size of the shared read buffer. Larger than the largest body packet an MTA sends (64 KiB and a
 * 5-byte header), so such a packet arrives in one read rather than two (libuv's own reads are
 * 64 KiB): one read, one body() call and one copy per packet. Being shared, it costs nothing per
 * connection.
 */
export const READ_BUFFER_SIZE = 256 * 1024;

/** The socket fields Node's `onread` option sets (see `lib/net.js`), by the names Node gives them. */
interface UserBufferFields {
  buffer: symbol;
  callback: symbol;
  generator: symbol;
}

type SocketInternals = net.Socket & Record<symbol, unknown> & { _handle?: { useUserBuffer?: (buffer: Uint8Array) => void } | null };

let fields: UserBufferFields | null | undefined;

/** Finds the `onread` fields on a socket, once per process; null when this Node lacks them. */
function userBufferFields(socket: SocketInternals): UserBufferFields | null {
  if (fields !== undefined) return fields;
  const byName = new Map(Object.getOwnPropertySymbols(socket).map((symbol) => [symbol.description, symbol]));
  const buffer = byName.get('kBuffer');
  const callback = byName.get('kBufferCb');
  const generator = byName.get('kBufferGen');
  fields = buffer && callback && generator ? { buffer, callback, generator } : null;
  return fields;
}

/** True when `socket` can read into a user buffer: the fields exist, are unset, and the handle has the method. */
export function canReuseReadBuffer(socket: net.Socket): boolean {
  const internals = socket as SocketInternals;
  const found = userBufferFields(internals);
  if (found === null) return false;
  if (internals[found.buffer] !== null || internals[found.callback] !== null || internals[found.generator] !== null) return false;
  return typeof internals._handle?.useUserBuffer === 'function';
}

/**
 * Sends the bytes read from `socket` to `onRead`: into `buffer` when the socket allows it and a
 * buffer is given, else through the `'data'` event. Pausing and resuming the socket work alike on
 * both paths, and so do `'end'` and `'close'`.
 */
export function readInto(socket: net.Socket, buffer: Buffer | undefined, onRead: ReadHandler): ReadPath {
  if (buffer !== undefined && canReuseReadBuffer(socket)) {
    const internals = socket as SocketInternals;
    const { buffer: bufferField, callback: callbackField } = fields!;
    internals[bufferField] = buffer;
    internals[callbackField] = (nread: number, target: Buffer): void => onRead(target, nread, true);
    internals._handle!.useUserBuffer!(buffer);
    return 'reused-buffer';
  }
  socket.on('data', (chunk: Buffer) => onRead(chunk, chunk.length, false));
  return 'stream';
}
