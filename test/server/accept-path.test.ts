/**
 * The server's accept paths over real sockets: connections served through their handles with no
 * `net.Socket`, its own accept handler (options shaped so that the sockets' hidden classes are
 * shared, through Node's internals where present), and Node's. Each must hand over working
 * connections and count them for server.close() and getConnections(); the Socket paths must
 * honour half-open sockets and publish them on the diagnostics channel, and a subscriber there
 * sends connections back to the Socket path.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import diagnosticsChannel from 'node:diagnostics_channel';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { acceptStreams, canShapeAcceptedSockets, shapeAcceptedSockets, type AcceptPath } from '../../src/net/accept-path.js';
import type { AcceptedStream } from '../../src/net/accepted-stream.js';
import { Milter, MilterServer } from '../../src/index.js';
import { encodeCommand } from '../../src/protocol/index.js';
import { POSTFIX_V6, connect } from '../milter/driver.js';
import { Wire } from './wire.js';

type Listen = { port: 0; host: '127.0.0.1' } | { path: string };

/** Connects `count` clients to the listening `server`; each sends `hello N` and collects what it receives. */
async function connectClients(server: net.Server, count: number): Promise<{ client: net.Socket; received: () => string; n: number }[]> {
  const address = server.address();
  const target = typeof address === 'string' ? { path: address } : { port: (address as net.AddressInfo).port, host: '127.0.0.1' };
  return Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const n = i + 1;
      const client = net.connect(target);
      await once(client, 'connect');
      let received = '';
      client.setEncoding('latin1');
      client.on('data', (text: string) => (received += text));
      client.write(`hello ${n}\n`);
      return { client, received: () => received, n };
    }),
  );
}

/**
 * Closes `server` and checks that it waits for its connections: each client gets its echo (and
 * `last`, once it ends) before the server's close completes.
 */
async function closeAfterClients(server: net.Server, clients: Awaited<ReturnType<typeof connectClients>>, last: string): Promise<void> {
  let serverClosed = false;
  server.close(() => (serverClosed = true));
  for (const { client, received, n } of clients) {
    while (!received().includes(`HELLO ${n}`)) await new Promise((resolve) => setTimeout(resolve, 5));
    assert.equal(serverClosed, false, 'the server waits for the connections it accepted');
    client.end();
    await once(client, 'close');
    assert.equal(received(), `HELLO ${n}\n${last}`);
  }
  while (!serverClosed) await new Promise((resolve) => setTimeout(resolve, 5));
}

function connectionCount(server: net.Server): Promise<number> {
  return new Promise<number>((resolve, reject) => server.getConnections((err, n) => (err ? reject(err) : resolve(n))));
}

/**
 * Serves three clients through `path`: each socket echoes what it reads in upper case and, the
 * server being half-open, answers the client's end with a last line before ending itself.
 */
async function serveThreeClients(where: Listen, path: AcceptPath, options: net.ServerOpts = {}): Promise<void> {
  const accepted: net.Socket[] = [];
  const published: unknown[] = [];
  const onPublish = (message: unknown): void => void published.push((message as { socket: unknown }).socket);
  diagnosticsChannel.subscribe('net.server.socket', onPublish);
  const server = net.createServer({ allowHalfOpen: true, ...options }, (socket) => {
    accepted.push(socket);
    socket.setEncoding('latin1');
    socket.on('data', (text: string) => socket.write(text.toUpperCase()));
    socket.on('end', () => socket.end('bye\n'));
  });
  try {
    server.listen(where);
    await once(server, 'listening');
    assert.equal(shapeAcceptedSockets(server), path);
    const clients = await connectClients(server, 3);
    while (accepted.length < 3) await new Promise((resolve) => setTimeout(resolve, 5));
    // The server counts them: getConnections() and the close below depend on it.
    assert.equal(await connectionCount(server), 3);
    await closeAfterClients(server, clients, 'bye\n');
    for (const socket of accepted) assert.equal(socket.destroyed, true);
    assert.deepEqual(published, accepted);
  } finally {
    diagnosticsChannel.unsubscribe('net.server.socket', onPublish);
    for (const socket of accepted) socket.destroy();
    server.close();
  }
}

function withSocketDir(run: (dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'milterkit-accept-'));
  return run(dir).finally(() => rmSync(dir, { recursive: true, force: true }));
}

test('accepting with shaped options over TCP: working sockets, counted, half-open, published', async () => {
  await serveThreeClients({ port: 0, host: '127.0.0.1' }, 'shaped-options', { noDelay: true });
});

test('accepting with shaped options over a unix socket', async () => {
  await withSocketDir((dir) => serveThreeClients({ path: join(dir, 's.sock') }, 'shaped-options'));
});

test("Node's accept handler stays where the server uses an option it leaves to Node (the fallback)", async () => {
  // Keep-alive is set by Node's handler, so it must stay.
  await serveThreeClients({ port: 0, host: '127.0.0.1' }, 'node', { keepAlive: true });
});

test("Node's accept handler stays where the internals are not there, or a connection limit is set", () => {
  const notListening = net.createServer();
  assert.equal(canShapeAcceptedSockets(notListening), false);
  assert.equal(shapeAcceptedSockets(notListening), 'node');
  const withoutCount = Object.assign(Object.create(net.Server.prototype) as net.Server, { _handle: { onconnection() {} }, highWaterMark: 16384 });
  assert.equal(canShapeAcceptedSockets(withoutCount), false);
  // A connection limit is enforced by Node's handler.
  const limited = Object.assign(Object.create(net.Server.prototype) as net.Server, { _handle: { onconnection() {} }, _connections: 0, highWaterMark: 16384, maxConnections: 10 });
  assert.equal(canShapeAcceptedSockets(limited), false);
  assert.equal(canShapeAcceptedSockets(Object.assign(limited, { maxConnections: 0 })), true);
});

/**
 * Serves two clients through `acceptStreams`: each stream echoes what it reads in upper case; at
 * the client's end the stream reports it and ends too.
 */
async function serveThroughHandles(where: Listen): Promise<void> {
  const streams: AcceptedStream[] = [];
  const events: string[] = [];
  const server = net.createServer({ noDelay: true }, () => assert.fail('no connection reaches the Socket path'));
  try {
    server.listen(where);
    await once(server, 'listening');
    const buffer = Buffer.alloc(65536);
    assert.equal(
      acceptStreams(server, buffer, (stream) => {
        const n = streams.push(stream);
        assert.deepEqual(stream.paths, { read: 'handle', write: 'direct' });
        stream.start({
          read: (chunk, length, borrowed) => {
            assert.equal(chunk, buffer, 'the read landed in the shared buffer');
            assert.equal(borrowed, true);
            stream.write(Buffer.from(chunk.toString('latin1', 0, length).toUpperCase(), 'latin1'));
          },
          end: () => events.push(`end ${n}`),
          error: (error) => events.push(`error ${n}: ${error.message}`),
          close: () => events.push(`close ${n}`),
          drained: () => {},
        });
      }),
      'handle',
    );
    const clients = await connectClients(server, 2);
    while (streams.length < 2) await new Promise((resolve) => setTimeout(resolve, 5));
    assert.equal(streams[0]!.remoteAddress, 'port' in where ? '127.0.0.1' : undefined);
    assert.equal(await connectionCount(server), 2, 'counted where Node counts its Sockets');
    await closeAfterClients(server, clients, '');
    assert.deepEqual(events.sort(), ['close 1', 'close 2', 'end 1', 'end 2']);
    for (const stream of streams) assert.equal(stream.destroyed, true);
  } finally {
    for (const stream of streams) stream.destroy();
    server.close();
  }
}

test('serving connections through their handles over TCP: reads, writes, ends, counted, closed', async () => {
  await serveThroughHandles({ port: 0, host: '127.0.0.1' });
});

test('serving connections through their handles over a unix socket', async () => {
  await withSocketDir((dir) => serveThroughHandles({ path: join(dir, 's.sock') }));
});

test('a peer that resets the connection is reported as an error, then closed', async () => {
  const server = net.createServer();
  const events: string[] = [];
  try {
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    let closed!: () => void;
    const whenClosed = new Promise<void>((resolve) => (closed = resolve));
    acceptStreams(server, Buffer.alloc(1024), (stream) =>
      stream.start({
        read: () => {},
        end: () => events.push('end'),
        error: (error) => events.push(`error ${(error as NodeJS.ErrnoException).code}`),
        close: () => {
          events.push('close');
          closed();
        },
        drained: () => {},
      }),
    );
    const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    await once(client, 'connect');
    client.write('x');
    await new Promise((resolve) => setTimeout(resolve, 20));
    client.resetAndDestroy();
    await whenClosed;
    assert.deepEqual(events, ['error ECONNRESET', 'close']);
  } finally {
    server.close();
  }
});

test('where the server is half-open or paused on connect, connections stay Sockets', async () => {
  for (const options of [{ allowHalfOpen: true }, { pauseOnConnect: true }]) {
    const server = net.createServer(options);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    assert.equal(
      acceptStreams(server, Buffer.alloc(1024), () => assert.fail('not through the handle')),
      'shaped-options',
    );
    server.close();
  }
});

for (const kind of ['unix', 'inet'] as const) {
  test(`a milter server serves ${kind} connections through their handles, and through Sockets while the diagnostics channel has a subscriber`, async () => {
    class Pass extends Milter {}
    await withSocketDir(async (dir) => {
      const server = new MilterServer({ filter: Pass, socket: kind === 'unix' ? `unix:${join(dir, 'm.sock')}` : 'inet:0@127.0.0.1' });
      await server.listen();
      const published: unknown[] = [];
      const onPublish = (message: unknown): void => void published.push((message as { socket: unknown }).socket);
      try {
        assert.equal(server.accepting, 'handle');
        const target = kind === 'unix' ? { path: join(dir, 'm.sock') } : { port: server.port!, host: '127.0.0.1' };
        for (const subscribed of [false, true, false]) {
          if (subscribed) diagnosticsChannel.subscribe('net.server.socket', onPublish);
          const wire = await Wire.open(target);
          const replies = await wire.exchange(2, POSTFIX_V6, connect());
          assert.deepEqual(
            replies.map((r) => r.type),
            ['optneg', 'continue'],
          );
          wire.socket.end(encodeCommand({ type: 'quit' }));
          await once(wire.socket, 'close');
          if (subscribed) diagnosticsChannel.unsubscribe('net.server.socket', onPublish);
        }
        assert.equal(published.length, 1, 'only the connection made while subscribed took the Socket path');
        while (server.connections > 0) await new Promise((resolve) => setTimeout(resolve, 5));
      } finally {
        diagnosticsChannel.unsubscribe('net.server.socket', onPublish);
        await server.close(100);
      }
    });
  });
}
