/**
 * `milterkit send` against a milter that answers end of message with an endless body replacement:
 * the client stops collecting at its limit, reports the milter as failed (exit status 6) and
 * closes, instead of buffering whatever the milter sends.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { FrameReader, encodeReply } from '../../src/protocol/index.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const cli = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

/** Stops a run of the test that went wrong: far more than any client limit used here. */
const SERVER_CAP = 256 * 1024 * 1024;

interface EndlessMilter {
  server: net.Server;
  port: number;
  /** Body replacement bytes written so far, over all connections. */
  written(): number;
}

/** A milter that continues every command and, at end of message, replaces the body forever. */
async function endlessBodyMilter(): Promise<EndlessMilter> {
  let written = 0;
  const server = net.createServer((socket) => {
    const reader = new FrameReader();
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => {
      reader.push(chunk, (code) => {
        const command = String.fromCharCode(code);
        if (command === 'O') socket.write(encodeReply({ type: 'optneg', version: 6, actions: 0x1ff, protocol: 0 }));
        else if (command === 'E') void replaceForever(socket);
        else if (!'DAQK'.includes(command)) socket.write(encodeReply({ type: 'continue' }));
      });
    });
  });
  async function replaceForever(socket: net.Socket): Promise<void> {
    const packet = encodeReply({ type: 'replaceBody', chunk: Buffer.alloc(65535, 0x61) });
    while (!socket.destroyed && written < SERVER_CAP) {
      written += packet.length;
      if (!socket.write(packet)) await new Promise((resolve) => (socket.once('drain', resolve), socket.once('close', resolve)));
    }
    if (!socket.destroyed) socket.write(encodeReply({ type: 'accept' }));
  }
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as net.AddressInfo).port, written: () => written };
}

function send(args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [cli, 'send', ...args], { cwd: root, encoding: 'utf8' }, (error, stdout, stderr) => {
      resolve({ status: error === null ? 0 : typeof error.code === 'number' ? error.code : -1, stdout, stderr });
    });
  });
}

test('milterkit send stops an endless body replacement at --max-modification-bytes and exits 6', async (t) => {
  const milter = await endlessBodyMilter();
  t.after(() => new Promise((resolve) => milter.server.close(resolve)));
  const run = await send([`inet:${milter.port}@127.0.0.1`, 'test/fixtures/messages/newsletter.eml', '--max-modification-bytes', '1048576']);
  assert.equal(run.status, 6, run.stdout + run.stderr);
  assert.match(run.stdout, /^error: MilterProtocolError MODIFICATION_LIMIT: milter sent more than 1048576 bytes of modifications at end of message/m);
  assert.match(run.stdout, /^verdict: tempfail$/m);
  // What the milter got rid of before the client closed: its limit plus what the socket buffers hold.
  assert.ok(milter.written() < 32 * 1024 * 1024, `the milter wrote ${milter.written()} bytes before the client closed`);
});

test('a --max-modification-bytes that is not a positive number is a usage error (64)', async () => {
  const run = await send(['inet:1@127.0.0.1', 'test/fixtures/messages/newsletter.eml', '--max-modification-bytes', 'lots']);
  assert.equal(run.status, 64);
  assert.match(run.stderr, /--max-modification-bytes needs a positive number of bytes, got "lots"/);
});
