import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import { spawnSync } from 'node:child_process';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { encodeCommand } from '../../src/protocol/index.js';
import { Wire } from './wire.js';
import { InvalidOptionError, Milter, MilterServer, type ServerOptions } from '../../src/index.js';
import { MemoryLogger, POSTFIX_V6, lifecycleRecorder, mail, types } from '../milter/driver.js';

async function tempDir(): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), 'milterkit-server-'));
}

async function start(options: Partial<ServerOptions> & Pick<ServerOptions, 'filter'>): Promise<{ server: MilterServer; logger: MemoryLogger }> {
  const logger = new MemoryLogger();
  const server = new MilterServer({ socket: 'inet:0@127.0.0.1', logger, ...options });
  await server.listen();
  return { server, logger };
}

class Tagger extends Milter {
  override eom() {
    this.addHeader('X-Tag', 'yes');
  }
}

test('unix socket: stale socket removed at start, mode 0660 by default, removed at close', async () => {
  const dir = await tempDir();
  const socketPath = path.join(dir, 'milter.sock');
  // A daemon killed without cleanup leaves its socket file behind.
  spawnSync(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(socketPath)}, () => process.kill(process.pid, 'SIGKILL'))`], { stdio: 'ignore' });
  assert.ok((await fs.lstat(socketPath)).isSocket(), 'stale socket left behind');

  const { server } = await start({ filter: Tagger, socket: `unix:${socketPath}` });
  assert.equal((await fs.stat(socketPath)).mode & 0o777, 0o660);
  const wire = await Wire.open({ path: socketPath });
  const replies = await wire.exchange(4, POSTFIX_V6, mail(), { type: 'eob' });
  assert.deepEqual(types(replies), ['optneg', 'continue', 'addHeader', 'continue']);
  wire.socket.end(encodeCommand({ type: 'quit' }));
  await server.close();
  await assert.rejects(fs.access(socketPath), 'socket removed at close');
  await fs.rm(dir, { recursive: true });
});

test('unix socket: a configured mode is applied; a path that is not a socket or is in use is refused', async () => {
  const dir = await tempDir();
  const socketPath = path.join(dir, 'm.sock');
  const { server } = await start({ filter: Milter, socket: `local:${socketPath}`, socketMode: 0o600 });
  assert.equal((await fs.stat(socketPath)).mode & 0o777, 0o600);
  await assert.rejects(new MilterServer({ filter: Milter, socket: `unix:${socketPath}` }).listen(), /in use/);
  await server.close();
  const file = path.join(dir, 'plain-file');
  await fs.writeFile(file, 'x');
  await assert.rejects(new MilterServer({ filter: Milter, socket: `unix:${file}` }).listen(), /not a socket/);
  await fs.rm(dir, { recursive: true });
});

test('unix socket: created with its mode (no chmod afterwards), whatever the umask', async () => {
  const dir = await tempDir();
  const socketPath = path.join(dir, 'mode.sock');
  // With umask 0 a socket is created 0777; only a server that sets the mode at creation gets 0640.
  const previousUmask = process.umask(0);
  const chmod = fs.chmod;
  const chmodded: string[] = [];
  fs.chmod = async (target) => void chmodded.push(String(target));
  try {
    const { server } = await start({ filter: Milter, socket: `unix:${socketPath}`, socketMode: 0o640 });
    assert.equal((await fs.lstat(socketPath)).mode & 0o777, 0o640);
    assert.deepEqual(chmodded, []);
    await server.close();
  } finally {
    fs.chmod = chmod;
    process.umask(previousUmask);
  }
  assert.equal(process.umask(), previousUmask, 'umask restored');
  await fs.rm(dir, { recursive: true });
});

test('unix socket: at close, a socket that has since taken the path is left alone', async () => {
  const dir = await tempDir();
  const socketPath = path.join(dir, 'shared.sock');
  const { server, logger } = await start({ filter: Milter, socket: `unix:${socketPath}` });
  // Another daemon removes the file and listens on the same path.
  await fs.rm(socketPath);
  const other = net.createServer();
  await new Promise<void>((resolve) => other.listen(socketPath, resolve));
  await server.close();
  assert.ok((await fs.lstat(socketPath)).isSocket(), "the other daemon's socket is still there");
  assert.ok(logger.has('warn', /no longer the socket this server created/));
  await new Promise<void>((resolve) => other.close(() => resolve()));
  await fs.rm(dir, { recursive: true });
});

test('options are checked at construction, errorVerdict included, with the option named', () => {
  const bad: Array<[Partial<ServerOptions>, RegExp]> = [
    [{ errorVerdict: 'progress' as never }, /errorVerdict/],
    [{ socketMode: 0o1777 }, /socketMode/],
    [{ maxConnections: 0 }, /maxConnections/],
    [{ idleTimeout: -1 }, /idleTimeout/],
    [{ callbackTimeout: 1.5 }, /callbackTimeout/],
    [{ maxWriteBuffer: Number.NaN }, /maxWriteBuffer/],
    [{ workers: 100_000 }, /workers/],
  ];
  for (const [options, name] of bad) {
    assert.throws(() => new MilterServer({ filter: Milter, ...options }), (error: Error) => error instanceof InvalidOptionError && name.test(error.message));
  }
});

test('TCP on IPv4 and IPv6 loopback, Sendmail and Postfix spellings', async () => {
  for (const socket of ['inet:0@127.0.0.1', 'inet6:0@[::1]', 'inet:[::1]:0']) {
    const { server } = await start({ filter: Tagger, socket });
    const wire = await Wire.open({ port: server.port!, host: server.address.kind === 'inet' ? server.address.host : '' });
    assert.deepEqual(types(await wire.exchange(1, POSTFIX_V6)), ['optneg']);
    wire.socket.destroy();
    await server.close();
  }
});

test('maxConnections: connections over the limit are refused, the others served', async () => {
  const { server, logger } = await start({ filter: Milter, maxConnections: 2 });
  const target = { port: server.port!, host: '127.0.0.1' };
  const a = await Wire.open(target);
  const b = await Wire.open(target);
  await Promise.all([a.exchange(1, POSTFIX_V6), b.exchange(1, POSTFIX_V6)]);
  const c = await Wire.open(target);
  await c.closed;
  assert.ok(logger.has('warn', /maxConnections/));
  assert.equal(server.connections, 2);
  a.socket.destroy();
  b.socket.destroy();
  await server.close();
});

test('idle timeout: a silent MTA connection is ended, and abort/close run', async () => {
  const events: string[] = [];
  const Watch = lifecycleRecorder(events);
  const { server, logger } = await start({ filter: Watch, idleTimeout: 50 });
  const wire = await Wire.open({ port: server.port!, host: '127.0.0.1' });
  await wire.exchange(2, POSTFIX_V6, mail());
  await wire.closed;
  assert.deepEqual(events, ['abort', 'close']);
  assert.ok(logger.has('warn', /ending session/));
  await server.close();
});

test('idle timeout: an MTA that keeps sending is not ended, however long the connection lasts', async () => {
  const events: string[] = [];
  const Watch = lifecycleRecorder(events);
  const { server } = await start({ filter: Watch, idleTimeout: 200 });
  const wire = await Wire.open({ port: server.port!, host: '127.0.0.1' });
  const ended = wire.closed.then(() => Promise.reject(new Error('the server ended an active connection')));
  ended.catch(() => {});
  try {
    await wire.exchange(2, POSTFIX_V6, mail());
    // Three times the idle timeout in all, with a packet every 50 ms.
    for (let i = 0; i < 12; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      const replies = await Promise.race([wire.exchange(1, { type: 'header', name: 'X-Tick', value: String(i) }), ended]);
      assert.deepEqual(types(replies), ['continue']);
    }
    assert.deepEqual(events, []);
  } finally {
    wire.socket.destroy();
    await server.close();
  }
});

test('graceful close lets a session in flight finish, then refuses new connections', async () => {
  let release!: () => void;
  const slow = new Promise<void>((resolve) => (release = resolve));
  class Slow extends Milter {
    override async eom() {
      await slow;
      this.addHeader('X-Late', 'ok');
    }
  }
  const { server } = await start({ filter: Slow });
  const port = server.port!;
  const wire = await Wire.open({ port, host: '127.0.0.1' });
  await wire.exchange(1, POSTFIX_V6);
  const eom = wire.exchange(3, mail(), { type: 'eob' });
  await new Promise((r) => setTimeout(r, 20));
  const closing = server.close();
  await assert.rejects(Wire.open({ port, host: '127.0.0.1' }), 'no new connections while closing');
  release();
  assert.deepEqual(types(await eom), ['continue', 'addHeader', 'continue']);
  wire.socket.end(encodeCommand({ type: 'quit' }));
  await closing;
});

test('graceful close ends sessions still open after the grace period', async () => {
  const { server } = await start({ filter: Milter });
  const wire = await Wire.open({ port: server.port!, host: '127.0.0.1' });
  await wire.exchange(1, POSTFIX_V6);
  await server.close(50);
  await wire.closed;
});

test('a callback that throws on one connection does not disturb another', async () => {
  class Picky extends Milter {
    override envfrom(sender: string) {
      if (sender.includes('boom')) throw new Error('filter bug');
      return 'accept' as const;
    }
  }
  const { server, logger } = await start({ filter: Picky });
  const target = { port: server.port!, host: '127.0.0.1' };
  const [bad, good] = await Promise.all([Wire.open(target), Wire.open(target)]);
  await Promise.all([bad.exchange(1, POSTFIX_V6), good.exchange(1, POSTFIX_V6)]);
  const [b, g] = await Promise.all([bad.exchange(1, mail('<boom@x>')), good.exchange(1, mail('<fine@x>'))]);
  assert.deepEqual([types(b), types(g)], [['tempfail'], ['accept']]);
  assert.ok(logger.has('error', /filter bug/));
  bad.socket.destroy();
  good.socket.destroy();
  await server.close();
});

test('graceful close does not wait on a callback that hangs past the grace period', async () => {
  const events: string[] = [];
  class Hangs extends Milter {
    override envfrom() {
      return new Promise<never>(() => {});
    }
    override abort() {
      events.push('abort');
    }
    override close() {
      events.push('close');
    }
  }
  const { server } = await start({ filter: Hangs, callbackTimeout: 600_000 });
  const wire = await Wire.open({ port: server.port!, host: '127.0.0.1' });
  await wire.exchange(1, POSTFIX_V6);
  wire.socket.write(encodeCommand(mail()));
  await new Promise((r) => setTimeout(r, 20));
  await server.close(50);
  await wire.closed;
  assert.deepEqual(events, ['abort', 'close']);
});
