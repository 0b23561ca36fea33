/**
 * Hostile peers over real sockets: one that never reads its replies, floods of idle and trickling
 * connections, refusals at the connection limit. Bounds are limits a correct server stays far
 * under, not measurements.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { encodeCommand } from '../../src/protocol/index.js';
import { Milter, MilterServer, type ServerOptions } from '../../src/index.js';
import { MemoryLogger, POSTFIX_V6, connect, header, macro, mail, rcpt, types } from '../milter/driver.js';
import { Wire } from './wire.js';

const MiB = 1024 * 1024;

/** Resident memory of a process, from /proc. */
function rssOf(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(match![1]) * 1024;
}

/** Resolves when the socket has closed, whatever error came first. */
const closeOf = (socket: net.Socket): Promise<void> => new Promise((resolve) => (socket.destroyed && socket.closed ? resolve() : socket.once('close', () => resolve())));

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** An open message, ready for BODY packets: what an MTA sends before the body. */
const messageStart = Buffer.concat(
  [POSTFIX_V6, connect('198.51.100.7'), { type: 'helo', name: 'client.example' } as const, mail(), rcpt(), { type: 'data' } as const, header('Subject', 'x'), { type: 'eoh' } as const].map((c) =>
    encodeCommand(c),
  ),
);

test('a peer that sends tiny BODY packets and never reads the replies: reading stops, the connection is closed, memory stays bounded', { timeout: 120_000 }, async (t) => {
  const fixture = fileURLToPath(new URL('./fixtures/plain-server.js', import.meta.url));
  const child = spawn(process.execPath, [fixture, JSON.stringify({ writeStallTimeout: 1000 })], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const [line] = (await once(child.stdout, 'data')) as [Buffer];
    const { port } = JSON.parse(line.toString()) as { port: number };
    // A well-behaved MTA first, so that the heap has grown to its working size before measuring.
    const body = encodeCommand({ type: 'body', chunk: Buffer.from('x') });
    const batch = Buffer.concat(Array.from({ length: 10_000 }, () => body));
    const reader = net.connect({ port, host: '127.0.0.1' });
    await once(reader, 'connect');
    let answered = 0;
    reader.on('data', (chunk: Buffer) => (answered += chunk.length));
    reader.write(messageStart);
    for (let i = 0; i < 100; i++) reader.write(batch);
    while (answered < 100 * 10_000 * 5) await sleep(50);
    reader.destroy();
    const socket = net.connect({ port, host: '127.0.0.1' });
    await once(socket, 'connect');
    socket.pause(); // never reads a reply
    socket.on('error', () => {});
    const closed = closeOf(socket);
    let serverClosed = false;
    void closed.then(() => (serverClosed = true));
    socket.write(messageStart);
    await sleep(200);
    const before = rssOf(child.pid!);
    // 48 MiB of one-byte BODY packets: each is answered with a 5-byte CONTINUE nobody reads.
    let sent = 0;
    while (sent < 48 * MiB && !serverClosed) {
      sent += batch.length;
      if (!socket.write(batch)) await Promise.race([new Promise<void>((resolve) => socket.once('drain', () => resolve())), closed]);
    }
    // A server that pauses never lets all of it through; one that does not is measured at once.
    if (sent < 48 * MiB) await closed;
    else await sleep(500);
    const growth = rssOf(child.pid!) - before;
    t.diagnostic(`sent ${(sent / MiB).toFixed(1)} MiB; server RSS growth ${(growth / MiB).toFixed(1)} MiB`);
    assert.ok(sent < 48 * MiB, `the server read everything (${sent} bytes) instead of pausing`);
    assert.ok(growth < 8 * MiB, `server RSS grew by ${(growth / MiB).toFixed(1)} MiB`);
  } finally {
    child.kill('SIGKILL');
  }
});

async function start(options: Partial<ServerOptions>): Promise<{ server: MilterServer; logger: MemoryLogger; target: { port: number; host: string } }> {
  const logger = new MemoryLogger();
  class Tagger extends Milter {
    override eom() {
      this.addHeader('X-Served', 'yes');
    }
  }
  const server = new MilterServer({ filter: Tagger, socket: 'inet:0@127.0.0.1', logger, ...options });
  await server.listen();
  return { server, logger, target: { port: server.port!, host: '127.0.0.1' } };
}

/** A peer that connects and sends nothing. */
async function idlePeer(target: { port: number; host: string }): Promise<net.Socket> {
  const socket = net.connect(target);
  socket.on('error', () => {});
  await once(socket, 'connect');
  return socket;
}

/** A peer that sends `bytes` one at a time, every `everyMs`, until the server closes it. */
async function tricklingPeer(target: { port: number; host: string }, bytes: Buffer, everyMs: number): Promise<net.Socket> {
  const socket = await idlePeer(target);
  let next = 0;
  const timer = setInterval(() => {
    if (socket.destroyed || next >= bytes.length) return clearInterval(timer);
    socket.write(bytes.subarray(next, ++next));
  }, everyMs);
  socket.once('close', () => clearInterval(timer));
  return socket;
}

test('a flood of idle and trickling connections filling the limit does not keep a real MTA conversation from being served', { timeout: 30_000 }, async () => {
  const { server, target } = await start({ maxConnections: 20 });
  const flood = [
    ...(await Promise.all(Array.from({ length: 10 }, () => idlePeer(target)))),
    ...(await Promise.all(Array.from({ length: 10 }, () => tricklingPeer(target, messageStart, 200)))),
  ];
  // Long enough for the flood to count as not being served; far shorter than any deadline.
  await sleep(1500);
  assert.equal(server.connections, 20);
  const mta = await Wire.open(target);
  const served = mta.exchange(8, POSTFIX_V6, connect('198.51.100.7'), mail(), rcpt(), header('Subject', 'real'), { type: 'eoh' }, { type: 'eob' });
  const outcome = await Promise.race([served.then(types), mta.closed.then(() => 'closed by the server')]);
  assert.deepEqual(outcome, ['optneg', 'continue', 'continue', 'continue', 'continue', 'continue', 'addHeader', 'continue']);
  mta.socket.destroy();
  for (const socket of flood) socket.destroy();
  await server.close(100);
});

test('deadlines no byte can reset: a connection that never negotiates and one that trickles a packet are closed', { timeout: 30_000 }, async () => {
  const { server, target, logger } = await start({ negotiationTimeout: 300, packetTimeout: 300 });
  const silent = await idlePeer(target);
  // Negotiates at once, then sends a macro packet a byte at a time: each byte is activity.
  const trickler = await idlePeer(target);
  trickler.write(encodeCommand(POSTFIX_V6));
  const packet = encodeCommand(macro('C', { j: 'mx.example' }));
  let next = 0;
  const timer = setInterval(() => {
    if (!trickler.destroyed && next < packet.length) trickler.write(packet.subarray(next, ++next));
  }, 50);
  await Promise.all([closeOf(silent), closeOf(trickler)]);
  clearInterval(timer);
  assert.ok(logger.has('warn', /negotiation deadline/));
  assert.ok(logger.has('warn', /packet deadline/));
  assert.equal(server.connections, 0);
  await server.close(100);
});

test('connections refused at the limit are logged once per interval, not once each', { timeout: 30_000 }, async () => {
  const { server, target, logger } = await start({ maxConnections: 2 });
  const a = await Wire.open(target);
  const b = await Wire.open(target);
  await Promise.all([a.exchange(1, POSTFIX_V6), b.exchange(1, POSTFIX_V6)]);
  for (let i = 0; i < 30; i++) {
    const refused = await idlePeer(target);
    await closeOf(refused);
  }
  assert.equal(server.connections, 2);
  assert.equal(logger.entries.filter((e) => /maxConnections/.test(e.message)).length, 1);
  a.socket.destroy();
  b.socket.destroy();
  await server.close(100);
});

test('an MTA that quits without reading its last replies is cut off after the write-stall timeout', { timeout: 30_000 }, async () => {
  // Below the read-pause bound, so only the end of the session leaves replies waiting.
  const { server, target } = await start({ writeStallTimeout: 300, maxWriteBuffer: 16 * MiB });
  const listening = (server as unknown as { server: net.Server }).server;
  const connections = (): Promise<number> => new Promise((resolve, reject) => listening.getConnections((err, n) => (err ? reject(err) : resolve(n))));
  const socket = await idlePeer(target);
  try {
    socket.pause(); // never reads a reply
    // 2,000,000 one-byte BODY packets: 10 MB of CONTINUE replies, more than the kernel buffers hold.
    const body = encodeCommand({ type: 'body', chunk: Buffer.from('x') });
    socket.write(Buffer.concat([messageStart, ...Array.from({ length: 2_000_000 }, () => body), encodeCommand({ type: 'quit' })]));
    while (server.connections > 0) await sleep(20);
    // The session is over; its connection waits for the MTA to read, but not for ever.
    let open = await connections();
    for (let waited = 0; waited < 10_000 && open > 0; waited += 50) {
      await sleep(50);
      open = await connections();
    }
    assert.equal(open, 0, 'the connection was closed');
  } finally {
    socket.destroy();
    await server.close(100);
  }
});
