/**
 * The server's write paths over real sockets: a connection served through its handle alone, a
 * `net.Socket` written through its handle (Node's stream binding, where present), and the public
 * `socket.write`. Each must deliver every reply in order, also when the MTA stops reading and the
 * kernel's buffer fills; pause reading past the bound of unread replies and resume once they are
 * read; report a stall; and end a connection whose peer is gone without throwing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { ServerConnection } from '../../src/server/connection.js';
import { canWriteDirect } from '../../src/net/write-path.js';
import { acceptStreams } from '../../src/net/accept-path.js';
import { SocketStream, type AcceptedStream } from '../../src/net/accepted-stream.js';
import type { MilterSession } from '../../src/milter/session.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const LIMITS = { maxWriteBuffer: 64 * 1024, negotiationTimeout: 60_000, packetTimeout: 60_000, idleTimeout: 60_000, writeStallTimeout: 1_000 };

type StreamKind = 'handle' | 'direct' | 'stream';

/** A server-side stream of `kind` wrapped in a ServerConnection, the client socket connected to it, and the stream's close. */
async function connectionPair(kind: StreamKind): Promise<{ connection: ServerConnection; client: net.Socket; closed: Promise<void>; close: () => void }> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  const accepted = new Promise<AcceptedStream>((resolve) => {
    server.on('connection', (socket: net.Socket) => resolve(new SocketStream(socket, undefined, kind === 'direct')));
    if (kind === 'handle') assert.equal(acceptStreams(server, Buffer.alloc(65536), resolve), 'handle');
  });
  const client = net.connect(port, '127.0.0.1');
  client.pause();
  client.on('error', () => {});
  const stream = await accepted;
  assert.equal(stream.paths.write, kind === 'stream' ? 'stream' : 'direct');
  assert.equal(stream.paths.read === 'handle', kind === 'handle');
  const connection = new ServerConnection(stream, LIMITS);
  // The transport asks its session only whether it is negotiated and idle.
  connection.session = { version: 6, idle: false, reads: 0, packetStartedAt: undefined } as unknown as MilterSession;
  let onClose = (): void => {};
  const closed = new Promise<void>((resolve) => (onClose = resolve));
  stream.start({ read: () => {}, end: () => {}, error: () => {}, close: onClose, drained: () => connection.drained() });
  return {
    connection,
    client,
    closed,
    close: () => {
      client.destroy();
      stream.destroy();
      server.close();
    },
  };
}

/** Frames with distinct bytes, 16 MiB in all: more than the kernel buffers of a loopback connection. */
function replies(): Buffer[] {
  return Array.from({ length: 8000 }, (_, i) => Buffer.alloc(2000 + (i % 97), i % 251));
}

for (const path of ['handle', 'direct', 'stream'] as const) {

  test(`write path ${path}: every reply in order while the MTA does not read, reading paused past the bound and resumed once read`, async () => {
    if (path === 'direct') assert.equal(canWriteDirect(new net.Socket()), false, 'a socket without a handle has no direct path');
    const { connection, client, close } = await connectionPair(path);
    try {
      const sent = replies();
      for (const reply of sent) connection.write(reply);
      assert.equal(connection.stream.reading, false, 'reading paused while the replies are unread');
      assert.equal(connection.overdue(Date.now()), undefined, 'not stalled yet');
      assert.equal(connection.overdue(Date.now() + LIMITS.writeStallTimeout + 1), 'replies not read');
      const received: Buffer[] = [];
      let length = 0;
      const total = sent.reduce((sum, reply) => sum + reply.length, 0);
      client.on('data', (chunk: Buffer) => {
        received.push(chunk);
        length += chunk.length;
      });
      client.resume();
      while (length < total) await sleep(5);
      assert.deepEqual(Buffer.concat(received), Buffer.concat(sent));
      // The client has every byte; the server learns its last write completed on a later turn
      // of the event loop, which a busy machine may delay: wait for it, within a second.
      for (let waited = 0; waited < 1000 && !connection.stream.reading; waited += 5) await sleep(5);
      assert.equal(connection.stream.reading, true, 'reading resumed once the replies were read');
      assert.equal(connection.overdue(Date.now() + LIMITS.writeStallTimeout + 1), undefined);
    } finally {
      close();
    }
  });

  test(`write path ${path}: closing while replies wait for the kernel sends them all before the end`, async () => {
    const { connection, client, close } = await connectionPair(path);
    try {
      const sent = replies();
      for (const reply of sent) connection.write(reply);
      // The session ends with replies the kernel has not taken: they must not be dropped.
      connection.close();
      const received: Buffer[] = [];
      client.on('data', (chunk: Buffer) => received.push(chunk));
      const closed = once(client, 'close');
      client.resume();
      await closed;
      assert.equal(Buffer.concat(received).equals(Buffer.concat(sent)), true, 'every reply, in order');
    } finally {
      close();
    }
  });

  test(`write path ${path}: closing with every reply in the kernel ends the connection at once`, async () => {
    const { connection, client, close } = await connectionPair(path);
    try {
      connection.write(Buffer.from('reply'));
      connection.close();
      // Closed outright, not half-closed waiting for the MTA's end.
      assert.equal(connection.stream.destroyed, true);
      const received: Buffer[] = [];
      client.on('data', (chunk: Buffer) => received.push(chunk));
      const ended = once(client, 'end');
      client.resume();
      await ended;
      assert.equal(Buffer.concat(received).toString(), 'reply');
    } finally {
      close();
    }
  });

  test(`write path ${path}: a write after the MTA is gone ends the connection with an error, never a throw`, async () => {
    const { connection, client, closed, close } = await connectionPair(path);
    try {
      client.destroy();
      await sleep(50);
      for (let i = 0; i < 50 && !connection.stream.destroyed; i++) {
        connection.write(Buffer.alloc(64 * 1024, 1));
        await sleep(5);
      }
      await closed;
      assert.equal(connection.stream.destroyed, true);
    } finally {
      close();
    }
  });
}
