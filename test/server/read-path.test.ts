/**
 * The server's two read paths over real sockets: reads into one reused buffer (through Node's
 * internals, where present) and the public 'data' event. Both must deliver every byte in order,
 * stop reading while paused, and report the end of the stream.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { canReuseReadBuffer, readInto, READ_BUFFER_SIZE, type ReadPath } from '../../src/net/read-path.js';
import { Milter, MilterServer } from '../../src/index.js';
import { POSTFIX_V6, connect, mail, rcpt } from '../milter/driver.js';
import { Wire } from './wire.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Accepts one connection, reads it with `readInto`, and pauses it after its first read for a while. */
async function readOneConnection(shared: Buffer | undefined, expected: ReadPath): Promise<void> {
  const received: Buffer[] = [];
  const borrowedFlags = new Set<boolean>();
  let readsWhilePaused = 0;
  let paused = false;
  let ended = false;
  const server = net.createServer((socket) => {
    if (shared !== undefined) assert.equal(canReuseReadBuffer(socket), true, 'this Node has the onread internals');
    const path = readInto(socket, shared, (buffer, length, borrowed) => {
      borrowedFlags.add(borrowed);
      if (shared !== undefined) assert.equal(buffer, shared, 'the read landed in the shared buffer');
      if (paused) readsWhilePaused++;
      received.push(Buffer.from(buffer.subarray(0, length)));
      if (received.length === 1) {
        paused = true;
        socket.pause();
        setTimeout(() => {
          paused = false;
          socket.resume();
        }, 100);
      }
    });
    assert.equal(path, expected);
    socket.on('end', () => {
      ended = true;
      socket.end();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  const client = net.connect(port, '127.0.0.1');
  await once(client, 'connect');
  const sent = Buffer.from(Array.from({ length: 600_000 }, (_, i) => (i * 7) % 251));
  for (let offset = 0; offset < sent.length; offset += 50_000) {
    client.write(sent.subarray(offset, offset + 50_000));
    await sleep(5);
  }
  client.end();
  client.resume();
  await once(client, 'close');
  server.close();
  assert.equal(readsWhilePaused, 0, 'no read while paused');
  assert.equal(ended, true, "'end' was emitted");
  assert.deepEqual([...borrowedFlags], [shared !== undefined]);
  assert.deepEqual(Buffer.concat(received), sent);
}

test('read path with a reused buffer: every byte in order, no read while paused, end reported', async () => {
  await readOneConnection(Buffer.alloc(READ_BUFFER_SIZE), 'reused-buffer');
});

test("read path through the 'data' event (the fallback): every byte in order, no read while paused, end reported", async () => {
  await readOneConnection(undefined, 'stream');
});

test('server on the reused buffer: body chunks a filter keeps are intact while other connections read', async () => {
  class Keeper extends Milter {
    private readonly chunks: Buffer[] = [];
    override envfrom() {
      this.chunks.length = 0;
    }
    override body(chunk: Buffer) {
      this.chunks.push(chunk);
    }
    override eom() {
      this.addHeader('X-Kept', Buffer.concat(this.chunks).toString('latin1'));
    }
  }
  const server = new MilterServer({ filter: Keeper, socket: 'inet:0@127.0.0.1' });
  await server.listen();
  try {
    const target = { port: server.port!, host: '127.0.0.1' };
    const wires = await Promise.all(['a', 'b', 'c'].map(() => Wire.open(target)));
    for (const wire of wires) await wire.exchange(4, POSTFIX_V6, connect(), mail(), rcpt());
    // Body packets of each connection interleaved with the others', each in its own read.
    const pieces = ['first-', 'second-', 'third'];
    for (const piece of pieces) {
      for (const [index, wire] of wires.entries()) await wire.exchange(1, { type: 'body', chunk: Buffer.from(`${'abc'[index]}:${piece}`) });
    }
    for (const [index, wire] of wires.entries()) {
      const [added] = await wire.exchange(2, { type: 'eob' });
      assert.equal(added?.type, 'addHeader');
      const expected = pieces.map((piece) => `${'abc'[index]}:${piece}`).join('');
      assert.equal(added.type === 'addHeader' ? added.value.toString() : '', expected);
    }
    for (const wire of wires) wire.socket.destroy();
  } finally {
    await server.close(100);
  }
});
