/**
 * How the server turns an accepted connection into a `net.Socket`. Node's own accept handler
 * passes `net.Socket` a fresh options object, which the Socket constructor copies with object
 * spread and then extends with three properties (`emitClose`, `autoDestroy`, `decodeStrings`). In
 * the V8 of Node 20, an object made by spread that gains a property gets hidden classes of its
 * own, so every connection makes three new ones and every property read of the Socket, Duplex,
 * Readable and Writable constructors misses V8's caches: some 60 K instructions per connection,
 * a third of what a connection costs (measured in bench/results/latest.md).
 *
 * The server avoids it by accepting through its own handler, which does what Node's does (see
 * `onconnection` in Node's `lib/net.js`) but passes the options with those three properties
 * already set to the values the constructor sets, so the copies share one hidden class. The
 * handler sits where Node keeps its own, on the listening handle; it is installed only when
 * the internals it relies on are all there and the server uses none of the options it leaves
 * to Node (a connection limit, keep-alive). Otherwise Node's handler stays.
 *
 * A milter server goes further ({@link acceptStreams}): it serves each connection through its
 * handle, with no `net.Socket` at all (`./handle-stream.ts`).
 */
import diagnosticsChannel from 'node:diagnostics_channel';
import net from 'node:net';
import type { AcceptedStream } from './accepted-stream.js';
import { canServeHandle, HandleStream, type ConnectionCounter } from './handle-stream.js';

/**
 * `handle`: served through their handles where they can be (see `./handle-stream.ts`), else as
 * `shaped-options`; `shaped-options`: accepted as `net.Socket`s by the handler of this module;
 * `node`: by Node's own.
 */
export type AcceptPath = 'handle' | 'shaped-options' | 'node';

/** The listening handle's accept callback, as Node's `lib/net.js` sets it. */
type OnConnection = (this: unknown, err: number, clientHandle: unknown) => void;

/** The server fields Node's accept handler reads and writes, by the names Node gives them. */
interface ServerInternals {
  _handle?: { onconnection?: OnConnection } | null;
  _connections?: number;
  maxConnections?: number;
  allowHalfOpen?: boolean;
  pauseOnConnect?: boolean;
  noDelay?: boolean;
  keepAlive?: boolean;
  highWaterMark?: number;
}

type SocketInternals = net.Socket & { server?: net.Server; _server?: net.Server };

/** Node publishes each accepted socket here (see `net.server.socket` in the diagnostics_channel docs). */
const serverSocketChannel = diagnosticsChannel.channel('net.server.socket');

/**
 * True when `server` (listening) can accept through this module: the handle has Node's accept
 * callback, the server counts its connections where Node does, and it sets no limit or keep-alive.
 */
export function canShapeAcceptedSockets(server: net.Server): boolean {
  const internals = server as unknown as ServerInternals;
  return (
    typeof internals._handle?.onconnection === 'function' &&
    typeof internals._connections === 'number' &&
    !internals.maxConnections &&
    !internals.keepAlive &&
    typeof internals.highWaterMark === 'number'
  );
}

/**
 * Makes a listening `server` accept with options that keep the sockets' hidden classes shared,
 * when it can (see {@link canShapeAcceptedSockets}); either way, each accepted socket is emitted
 * as `'connection'`, as before. Call it once the server listens, once per listening handle.
 *
 * @param serveHandle offered each accepted client handle first; returns true when it took it, and
 *   no Socket is made.
 */
export function shapeAcceptedSockets(server: net.Server, serveHandle?: (clientHandle: unknown) => boolean): AcceptPath {
  if (!canShapeAcceptedSockets(server)) return 'node';
  const internals = server as unknown as ServerInternals;
  const handle = internals._handle!;
  const nodeOnConnection = handle.onconnection!;
  const { allowHalfOpen, pauseOnConnect, noDelay, highWaterMark } = internals;
  handle.onconnection = function acceptWithShapedOptions(this: unknown, err: number, clientHandle: unknown): void {
    // An accept error is reported by Node's handler, as 'error' on the server.
    if (err) return nodeOnConnection.call(this, err, clientHandle);
    if (serveHandle?.(clientHandle) === true) return;
    const socket = new net.Socket({
      handle: clientHandle,
      allowHalfOpen: Boolean(allowHalfOpen),
      pauseOnCreate: Boolean(pauseOnConnect),
      readable: true,
      writable: true,
      readableHighWaterMark: highWaterMark,
      writableHighWaterMark: highWaterMark,
      // The values net.Socket sets; present beforehand, they are overwritten rather than added.
      emitClose: false,
      autoDestroy: true,
      decodeStrings: false,
    } as unknown as net.SocketConstructorOpts) as SocketInternals;
    if (noDelay) socket.setNoDelay(true);
    // Node's bookkeeping: server.close() waits for the connections it counts.
    internals._connections!++;
    socket.server = server;
    socket._server = server;
    server.emit('connection', socket);
    if (serverSocketChannel.hasSubscribers) serverSocketChannel.publish({ socket });
  };
  return serveHandle === undefined ? 'shaped-options' : 'handle';
}

/**
 * Makes a listening `server` hand its connections to `onStream` through their handles, with no
 * `net.Socket` (see `./handle-stream.ts`), where this Node and the server allow it: not half-open,
 * not paused on connect, counted where Node counts them. A connection that cannot be served so
 * (its handle lacks a method, or something listens on the `net.server.socket` diagnostics channel,
 * which publishes Sockets) is accepted as a `net.Socket` and emitted as `'connection'`, as are all
 * of them where the handle path is not available: the caller listens for both.
 *
 * @param readBuffer the server's shared read buffer, which every handle reads into.
 */
export function acceptStreams(server: net.Server, readBuffer: Buffer, onStream: (stream: AcceptedStream) => void): AcceptPath {
  const internals = server as unknown as ServerInternals & Partial<ConnectionCounter>;
  if (internals.allowHalfOpen || internals.pauseOnConnect || typeof internals._emitCloseIfDrained !== 'function') return shapeAcceptedSockets(server);
  const counter = internals as ConnectionCounter;
  const noDelay = Boolean(internals.noDelay);
  return shapeAcceptedSockets(server, (clientHandle) => {
    if (serverSocketChannel.hasSubscribers || !canServeHandle(clientHandle)) return false;
    if (noDelay) clientHandle.setNoDelay?.(true);
    onStream(new HandleStream(clientHandle, readBuffer, counter));
    return true;
  });
}
