/**
 * The server's two accept paths over real sockets: its own accept handler (options shaped so
 * that the sockets' hidden classes are shared, through Node's internals where present) and
 * Node's. Both must hand over working sockets, count them for server.close() and
 * getConnections(), honour half-open sockets, and publish them on the diagnostics channel.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import diagnosticsChannel from 'node:diagnostics_channel';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canShapeAcceptedSockets, shapeAcceptedSockets, type AcceptPath } from '../../src/net/accept-path.js';
import { Milter, MilterServer } from '../../src/index.js';
import { POSTFIX_V6, connect } from '../milter/driver.js';
import { Wire } from './wire.js';

type Listen = { port: 0; host: '127.0.0.1' } | { path: string };

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
    const address = server.address();
    const target = typeof address === 'string' ? { path: address } : { port: (address as net.AddressInfo).port, host: '127.0.0.1' };
    const clients = await Promise.all(
      [1, 2, 3].map(async (n) => {
        const client = net.connect(target);
        await once(client, 'connect');
        let received = '';
        client.setEncoding('latin1');
        client.on('data', (text: string) => (received += text));
        client.write(`hello ${n}\n`);
        return { client, received: () => received, n };
      }),
    );
    while (accepted.length < 3) await new Promise((resolve) => setTimeout(resolve, 5));
    // The server counts them: getConnections() and the close below depend on it.
    const count = await new Promise<number>((resolve, reject) => server.getConnections((err, n) => (err ? reject(err) : resolve(n))));
    assert.equal(count, 3);
    let serverClosed = false;
    server.close(() => (serverClosed = true));
    for (const { client, received, n } of clients) {
      while (!received().includes(`HELLO ${n}`)) await new Promise((resolve) => setTimeout(resolve, 5));
      assert.equal(serverClosed, false, 'the server waits for the connections it accepted');
      client.end();
      await once(client, 'close');
      assert.equal(received(), `HELLO ${n}\nbye\n`);
    }
    while (!serverClosed) await new Promise((resolve) => setTimeout(resolve, 5));
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

test('a milter server accepts through the shaped options on this Node', async () => {
  class Pass extends Milter {}
  const server = new MilterServer({ filter: Pass, socket: 'inet:0@127.0.0.1' });
  await server.listen();
  try {
    const listening = (server as unknown as { server: net.Server }).server;
    const internals = listening as unknown as { _handle: { onconnection: { name: string } } };
    assert.equal(canShapeAcceptedSockets(listening), true, 'this Node has the accept internals');
    assert.equal(internals._handle.onconnection.name, 'acceptWithShapedOptions');
    const wire = await Wire.open({ port: server.port!, host: '127.0.0.1' });
    const replies = await wire.exchange(2, POSTFIX_V6, connect());
    assert.deepEqual(
      replies.map((r) => r.type),
      ['optneg', 'continue'],
    );
    wire.socket.destroy();
  } finally {
    await server.close(100);
  }
});
