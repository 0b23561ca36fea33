/**
 * One connection of the daemon, run in-process: how its request is read (in one read or several,
 * within its bound), and what the daemon keeps of it once its reply is out and Courier closed it:
 * nothing. Courier connects once per message, so anything held per connection after its close
 * adds up to thousands of dead sockets in memory under load.
 */
import assert from 'node:assert/strict';
import diagnosticsChannel from 'node:diagnostics_channel';
import { mkdir } from 'node:fs/promises';
import { createConnection, type Socket } from 'node:net';
import { join } from 'node:path';
import { setTimeout as delay, setImmediate as nextTurn } from 'node:timers/promises';
import v8 from 'node:v8';
import vm from 'node:vm';
import { describe, it } from 'node:test';
import { CourierFilterDaemon, type CourierDaemonOptions } from '../../src/courier/daemon.js';
import { parseModuleReply } from '../../src/courier/reply.js';
import { MAX_REQUEST_BYTES } from '../../src/courier/request.js';
import { requestFor, sendRequest } from './fake-courierfilter.js';
import { copySpool, memoryLogger, scratch } from './support.js';

v8.setFlagsFromString('--expose-gc');
const collectGarbage = vm.runInNewContext('gc') as () => void;

/** Starts an in-process daemon answering every message with what `handler` says. */
async function startDaemon(dir: string, handler: CourierDaemonOptions['handler'] = async () => parseModuleReply('200 Ok')!) {
  const localstatedir = join(dir, 'var');
  for (const sub of ['allfilters', 'filters', 'tmp/1795']) await mkdir(join(localstatedir, sub), { recursive: true });
  const daemon = new CourierFilterDaemon({
    name: 'in-process',
    localstatedir,
    socketDirectory: 'allfilters',
    handler,
    logger: memoryLogger().logger,
    maxConnections: 4,
    requestTimeoutMs: 5000,
    shutdownTimeoutMs: 1000,
    errorReply: '451 4.3.0 error',
    busyReply: '451 4.3.0 busy',
    closeReadyFd: false,
  });
  await daemon.start();
  const [data, control] = await copySpool(join(localstatedir, 'tmp/1795'), 'D-plain', 'C-ipv4-mapped');
  return { daemon, request: requestFor(data!, control!) };
}

/** Sends `pieces` as separate writes, a while apart (so that each is a read of its own), and reads the reply. */
function sendInPieces(socketPath: string, pieces: Array<string | Buffer>): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ path: socketPath, allowHalfOpen: true });
    const chunks: Buffer[] = [];
    socket.on('connect', async () => {
      for (const piece of pieces) {
        if (socket.destroyed || socket.writableEnded) return;
        socket.write(piece);
        await delay(20);
      }
    });
    socket.on('data', (chunk) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('end', () => socket.end());
    socket.on('close', () => resolve(Buffer.concat(chunks).toString()));
  });
}

describe('Courier daemon: reading a request', () => {
  it('reads a request that arrives in several reads, each kept though the read buffer is reused', async () => {
    const { dir, remove } = await scratch('mkc-pieces-');
    const seen: string[] = [];
    const { daemon, request } = await startDaemon(dir, async (filterRequest) => {
      seen.push([filterRequest.dataPath, ...filterRequest.controlPaths].map((path) => path.slice(path.lastIndexOf('/') + 1)).join(' '));
      return parseModuleReply('200 Ok')!;
    });
    try {
      const cut = [5, request.indexOf('\n') + 3, request.length - 1];
      const pieces = [request.slice(0, cut[0]), request.slice(cut[0], cut[1]), request.slice(cut[1], cut[2]), request.slice(cut[2])];
      // Another connection's reads in between must not overwrite what the first has kept.
      const [pieced, whole] = await Promise.all([sendInPieces(daemon.socketPath, pieces), sendInPieces(daemon.socketPath, [request])]);
      assert.deepEqual([pieced, whole], ['200 Ok\n', '200 Ok\n']);
      assert.deepEqual(seen, ['D-plain C-ipv4-mapped', 'D-plain C-ipv4-mapped']);
    } finally {
      await daemon.stop();
      await remove();
    }
  });

  it('refuses a request that passes its bound without an empty line, with the error reply', async () => {
    const { dir, remove } = await scratch('mkc-bound-');
    const { daemon } = await startDaemon(dir);
    try {
      const line = `/${'x'.repeat(1023)}\n`;
      const reply = await sendInPieces(daemon.socketPath, Array.from({ length: Math.ceil(MAX_REQUEST_BYTES / line.length) + 2 }, () => line));
      assert.equal(reply, '451 4.3.0 error\n');
    } finally {
      await daemon.stop();
      await remove();
    }
  });
});

describe('Courier daemon: a closed connection', () => {
  it('is not held in memory after its reply (the linger timer ends with the connection)', async () => {
    const { dir, remove } = await scratch('mkc-release-');
    const accepted: Array<WeakRef<Socket>> = [];
    const onSocket = (message: unknown) => accepted.push(new WeakRef((message as { socket: Socket }).socket));
    diagnosticsChannel.subscribe('net.server.socket', onSocket);
    const { daemon, request } = await startDaemon(dir);
    try {
      for (let i = 0; i < 3; i++) assert.equal(await sendRequest(daemon.socketPath, request), '200 Ok\n');
      assert.equal(accepted.length, 3);
      // The daemon's side closes once it has seen Courier's close; then nothing may keep it.
      for (let round = 0; round < 50 && accepted.some((ref) => ref.deref()?.destroyed === false); round++) await nextTurn();
      for (let round = 0; round < 3; round++) {
        collectGarbage();
        await nextTurn();
      }
      assert.deepEqual(accepted.map((ref) => ref.deref() === undefined), [true, true, true]);
    } finally {
      diagnosticsChannel.unsubscribe('net.server.socket', onSocket);
      await daemon.stop();
      await remove();
    }
  });
});
