import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Milter, MilterServer } from '../../src/index.js';
import { once } from 'node:events';
import { MilterConnectionError, MilterTimeoutError, connectMilter } from '../../src/client/index.js';
import { attachSocket } from '../../src/client/socket.js';
import { FrameReader, encodeReply } from '../../src/protocol/index.js';
import { postfixProfile, runTransaction } from '../../src/mta/index.js';

class Tagger extends Milter {
  override eom() {
    this.addHeader('X-Tagged', 'yes');
  }
}

const message = 'From: a@example.org\r\nTo: b@example.net\r\nSubject: t\r\n\r\nbody\r\n';

async function tagged(spec: string): Promise<string | undefined> {
  const report = await runTransaction(await connectMilter(spec), message, { profile: postfixProfile });
  assert.equal(report.error, undefined, String(report.error));
  return report.header('X-Tagged');
}

test('the client reaches a milter over TCP with every spelling of an inet socket spec', async (t) => {
  const server = new MilterServer({ filter: Tagger, socket: 'inet:0@127.0.0.1' });
  await server.listen();
  t.after(() => server.close());
  const port = server.port!;
  for (const spec of [`inet:${port}@127.0.0.1`, `inet:127.0.0.1:${port}`, `inet:${port}@[127.0.0.1]`, `inet:${port}`, `tcp:127.0.0.1:${port}`]) {
    assert.equal(await tagged(spec), 'yes', spec);
  }
});

test('the client reaches a milter over IPv6 loopback', async (t) => {
  const server = new MilterServer({ filter: Tagger, socket: 'inet6:0@[::1]' });
  await server.listen();
  t.after(() => server.close());
  assert.equal(await tagged(`inet6:${server.port}@[::1]`), 'yes');
  assert.equal(await tagged(`inet:[::1]:${server.port}`), 'yes');
});

test('the client reaches a milter over a unix socket with every spelling', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'milterkit-client-'));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const socketPath = path.join(dir, 'milter.sock');
  const server = new MilterServer({ filter: Tagger, socket: `unix:${socketPath}` });
  await server.listen();
  t.after(() => server.close());
  for (const spec of [`unix:${socketPath}`, `local:${socketPath}`, socketPath]) assert.equal(await tagged(spec), 'yes', spec);
});

test('a refused connection is a MilterConnectionError naming the address', async () => {
  // A port that was just free: bind, note it, release.
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = (probe.address() as net.AddressInfo).port;
  await new Promise((resolve) => probe.close(resolve));
  await assert.rejects(connectMilter(`inet:${port}@127.0.0.1`), (error: unknown) => error instanceof MilterConnectionError && error.message.includes(`127.0.0.1:${port}`));
  await assert.rejects(connectMilter('unix:/nonexistent/milterkit.sock'), MilterConnectionError);
});

test('a milter that accepts the connection but never answers OPTNEG fails with a timeout for stage negotiate', async (t) => {
  const silent = net.createServer((socket) => socket.resume());
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => silent.close(resolve)));
  const connection = await connectMilter(`inet:${(silent.address() as net.AddressInfo).port}@127.0.0.1`, { timeouts: { command: 50 } });
  await assert.rejects(connection.negotiate(), (error: unknown) => error instanceof MilterTimeoutError && error.stage === 'negotiate');
  assert.equal(connection.closed, true);
});

test('a milter that stops reading does not keep the closed client socket open', { timeout: 30_000 }, async (t) => {
  // Answers up to RCPT, then never reads again: the client's 16 MiB header stays unsent.
  const peers: net.Socket[] = [];
  const server = net.createServer((peer) => {
    peers.push(peer);
    const reader = new FrameReader();
    peer.on('error', () => undefined);
    peer.on('data', (chunk: Buffer) =>
      reader.push(chunk, (code) => {
        const command = String.fromCharCode(code);
        if (command === 'O') peer.write(encodeReply({ type: 'optneg', version: 6, actions: 0x1ff, protocol: 0 }));
        else if ('CMR'.includes(command)) peer.write(encodeReply({ type: 'continue' }));
        if (command === 'R') peer.pause();
      }),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  // A paused peer never reads the client's FIN: end it here, or the server never closes.
  t.after(() => new Promise((resolve) => (peers.forEach((peer) => peer.destroy()), server.close(resolve))));
  const socket = net.createConnection({ port: (server.address() as net.AddressInfo).port, host: '127.0.0.1' });
  await once(socket, 'connect');
  const closed = once(socket, 'close');
  const connection = attachSocket(socket, { timeouts: { command: 200, content: 200 } });
  await connection.negotiate();
  await connection.connect({ hostname: 'client.example', family: 'inet', address: '192.0.2.1', port: 25 });
  await connection.mail('<a@example.org>');
  await connection.rcpt('<b@example.net>');
  await assert.rejects(connection.header('X-Big', 'x'.repeat(16 * 1024 * 1024)), MilterTimeoutError);
  await closed;
  assert.equal(socket.destroyed, true);
});
