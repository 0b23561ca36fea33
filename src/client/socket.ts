/**
 * Opening a milter connection over a socket, with any spelling of socket specification that the
 * server side accepts (`unix:/path`, `local:/path`, `inet:port@host`, `inet6:port@[::1]`,
 * `inet:host:port`, `/path`).
 */
import net from 'node:net';
import { parseSocketSpec, type SocketAddress } from '../net/socket-spec.js';
import { MilterConnection, type MilterClientOptions } from './connection.js';
import { MilterConnectionError, MilterTimeoutError } from './errors.js';

/** Options of {@link connectMilter}. */
export interface ConnectOptions extends MilterClientOptions {
  /** Time allowed to open the socket, in milliseconds (Postfix `milter_connect_timeout`: 30 s). */
  connectTimeout?: number;
}

/** Default time allowed to open the socket. */
export const DEFAULT_CONNECT_TIMEOUT = 30_000;

/**
 * Connects to a milter. The returned connection has not negotiated yet: call
 * {@link MilterConnection.negotiate} first.
 * @throws MilterConnectionError if the socket cannot be opened; MilterTimeoutError if it takes too long
 */
export async function connectMilter(spec: string | SocketAddress, options: ConnectOptions = {}): Promise<MilterConnection> {
  const address = typeof spec === 'string' ? parseSocketSpec(spec) : spec;
  const where = address.kind === 'unix' ? address.path : `${address.host}:${address.port}`;
  const timeoutMs = options.connectTimeout ?? DEFAULT_CONNECT_TIMEOUT;
  const socket = address.kind === 'unix' ? net.createConnection({ path: address.path }) : net.createConnection({ host: address.host, port: address.port });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new MilterTimeoutError('connect', timeoutMs));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeListener('error', onError);
      resolve();
    });
    const onError = (error: Error): void => {
      clearTimeout(timer);
      reject(new MilterConnectionError(`cannot connect to the milter at ${where}: ${error.message}`, 'connect', { cause: error }));
    };
    socket.once('error', onError);
  });
  return attachSocket(socket, options);
}

/** How long a closing connection may take to flush what is left to write before it is cut. */
const CLOSE_GRACE_MS = 2000;

/** Runs a client connection over an already open socket (or any duplex stream of that shape). */
export function attachSocket(socket: net.Socket, options: MilterClientOptions = {}): MilterConnection {
  socket.setNoDelay?.(true);
  const connection = new MilterConnection(
    {
      write: (data) => {
        socket.write(data);
      },
      close: () => {
        // Flush what was written (QUIT), then release the socket even if the milter keeps it
        // open; a milter that has stopped reading gets a short grace, not a socket held forever.
        socket.end(() => socket.destroy());
        const grace = setTimeout(() => socket.destroy(), CLOSE_GRACE_MS);
        grace.unref();
        socket.once('close', () => clearTimeout(grace));
      },
    },
    options,
  );
  socket.on('data', (chunk: Buffer) => connection.receive(chunk));
  socket.on('end', () => connection.end());
  socket.on('close', () => connection.end());
  socket.on('error', (error) => connection.transportError(error));
  return connection;
}
