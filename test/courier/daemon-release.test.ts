/**
 * What the daemon keeps of a connection once its reply is out and Courier closed it: nothing.
 * Courier connects once per message, so anything held per connection after its close adds up
 * to thousands of dead sockets in memory under load.
 */
import assert from 'node:assert/strict';
import diagnosticsChannel from 'node:diagnostics_channel';
import { mkdir } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import v8 from 'node:v8';
import vm from 'node:vm';
import { describe, it } from 'node:test';
import { CourierFilterDaemon } from '../../src/courier/daemon.js';
import { parseModuleReply } from '../../src/courier/reply.js';
import { requestFor, sendRequest } from './fake-courierfilter.js';
import { copySpool, memoryLogger, scratch } from './support.js';

v8.setFlagsFromString('--expose-gc');
const collectGarbage = vm.runInNewContext('gc') as () => void;

describe('Courier daemon: a closed connection', () => {
  it('is not held in memory after its reply (the linger timer ends with the connection)', async () => {
    const { dir, remove } = await scratch('mkc-release-');
    const accepted: Array<WeakRef<Socket>> = [];
    const onSocket = (message: unknown) => accepted.push(new WeakRef((message as { socket: Socket }).socket));
    diagnosticsChannel.subscribe('net.server.socket', onSocket);
    const localstatedir = join(dir, 'var');
    for (const sub of ['allfilters', 'filters', 'tmp/1795']) await mkdir(join(localstatedir, sub), { recursive: true });
    const daemon = new CourierFilterDaemon({
      name: 'release',
      localstatedir,
      socketDirectory: 'allfilters',
      handler: async () => parseModuleReply('200 Ok')!,
      logger: memoryLogger().logger,
      maxConnections: 4,
      requestTimeoutMs: 5000,
      shutdownTimeoutMs: 1000,
      errorReply: '451 4.3.0 error',
      busyReply: '451 4.3.0 busy',
      closeReadyFd: false,
    });
    try {
      await daemon.start();
      const [data, control] = await copySpool(join(localstatedir, 'tmp/1795'), 'D-plain', 'C-ipv4-mapped');
      for (let i = 0; i < 3; i++) assert.equal(await sendRequest(daemon.socketPath, requestFor(data!, control!)), '200 Ok\n');
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
