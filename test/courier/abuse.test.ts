/**
 * Hostile use of the daemon's socket: requests naming files Courier would never name, silent
 * connections, and modules that misbehave. Each must end in a clear log line and the configured
 * verdict, with the daemon still serving real messages afterwards.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cp, mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { createConnection, type Socket } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { useDaemonHarness, type DaemonHarness } from './daemon-harness.js';
import { requestFor, sendRequest } from './fake-courierfilter.js';
import { copySpool, spoolFixtures } from './support.js';

const scripted = fileURLToPath(new URL('./modules/scripted.js', import.meta.url));

/** A request's two paths, made in the test's directories. */
type Paths = { data: string; control: string };

/** Requests naming what Courier never names, and why each must be refused. */
const HOSTILE_REQUESTS: Array<{ what: string; refused: RegExp; paths: (h: DaemonHarness, outside: string) => Promise<Paths> }> = [
  { what: 'a device as the data file', refused: /outside Courier's spool/, paths: async (h) => ({ data: '/dev/zero', control: await spooled(h, 'C-ipv4-mapped') }) },
  { what: 'a device as the control file', refused: /outside Courier's spool/, paths: async (h) => ({ data: await spooled(h, 'D-plain'), control: '/dev/zero' }) },
  {
    what: 'a FIFO in the spool as the control file',
    refused: /not a regular file/,
    paths: async (h) => ({ data: await spooled(h, 'D-plain'), control: fifoIn(h.spool, 'C-fifo') }),
  },
  { what: 'a FIFO in the spool as the data file', refused: /not a regular file/, paths: async (h) => ({ data: fifoIn(h.spool, 'D-fifo'), control: await spooled(h, 'C-ipv4-mapped') }) },
  {
    what: 'a symlink from the spool to a file outside it',
    refused: /outside Courier's spool/,
    paths: async (h, outside) => {
      await symlink(join(outside, 'D-plain'), join(h.spool, 'D-link'));
      return { data: join(h.spool, 'D-link'), control: await spooled(h, 'C-ipv4-mapped') };
    },
  },
  {
    what: 'a symlinked directory in the spool leading outside it',
    refused: /outside Courier's spool/,
    paths: async (h, outside) => {
      await symlink(outside, join(h.spool, 'dir-link'));
      return { data: join(h.spool, 'dir-link', 'D-plain'), control: await spooled(h, 'C-ipv4-mapped') };
    },
  },
  { what: 'an absolute path with ../ out of the spool', refused: /outside Courier's spool/, paths: async (h) => ({ data: `${h.spool}/../../../outside/D-plain`, control: await spooled(h, 'C-ipv4-mapped') }) },
  { what: 'a relative path with ../ out of the spool', refused: /outside Courier's spool/, paths: async (h) => ({ data: '1795/../../../outside/D-plain', control: await spooled(h, 'C-ipv4-mapped') }) },
  { what: 'an absolute path outside the spool', refused: /outside Courier's spool/, paths: async (h, outside) => ({ data: join(outside, 'D-plain'), control: await spooled(h, 'C-ipv4-mapped') }) },
  { what: 'a directory in the spool', refused: /not a regular file/, paths: async (h) => ({ data: h.spool, control: await spooled(h, 'C-ipv4-mapped') }) },
];

async function spooled(h: DaemonHarness, name: string): Promise<string> {
  return (await copySpool(h.spool, name))[0]!;
}

function fifoIn(dir: string, name: string): string {
  execFileSync('mkfifo', [join(dir, name)]);
  return join(dir, name);
}

/** Opens a connection that never sends anything; resolves once it is connected. */
function silentConnection(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(path);
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

describe('Courier daemon under attack', { timeout: 120_000 }, () => {
  const h = useDaemonHarness();

  it('refuses files outside the spool and files that are not regular, and keeps serving', async () => {
    const outside = join(h.dir, 'outside');
    await mkdir(outside);
    await cp(join(spoolFixtures, 'D-plain'), join(outside, 'D-plain'));
    const original = await readFile(join(outside, 'D-plain'));
    // add_header would rewrite whatever data file it were given.
    const filter = await h.startReady(['--name', 'mk', '--config', await h.configFile('modules:\n  - add_header\n')]);
    for (const hostile of HOSTILE_REQUESTS) {
      const { data, control } = await hostile.paths(h, outside);
      const before = filter.records.length;
      assert.match(await sendRequest(h.socket(), requestFor(data, control)), /^451 /, hostile.what);
      const logged = filter.records.slice(before).find((r) => r.event === 'request-failed');
      assert.match(String(logged?.msg), hostile.refused, hostile.what);
    }
    assert.deepEqual(await readFile(join(outside, 'D-plain')), original);
    assert.equal(await sendRequest(h.socket(), await h.plainRequest()), '200 Ok\n');
    assert.equal(await filter.stop(), 0);
  });

  it('does not let silent connections keep real messages out', async () => {
    const config = await h.configFile(`maxConnections: 1\nmodules:\n  - module: ${scripted}\n    options: { reply: "250 seen" }\n`);
    const filter = await h.startReady(['--name', 'mk', '--config', config]);
    // Ten times the message limit, more than the daemon keeps waiting for a request.
    const silent = await Promise.all(Array.from({ length: 10 }, () => silentConnection(h.socket())));
    assert.equal(await sendRequest(h.socket(), await h.plainRequest()), '250 seen\n');
    // The oldest silent ones were dropped to make room, with one log line for the lot.
    assert.equal(filter.records.filter((r) => r.event === 'silent-connections-dropped').length, 1);
    for (const socket of silent) socket.destroy();
    assert.equal(await filter.stop(), 0);
  });

  it('answers small messages promptly while a 10 MiB plain-text message is scanned for attachments', async () => {
    const config = await h.configFile('maxConnections: 8\nmodules:\n  - attachments\n');
    const filter = await h.startReady(['--name', 'mk', '--config', config]);
    const large = join(h.spool, 'D-large');
    // Lines of a usual length: the shape that costs a whole-message parser the most time.
    await writeFile(large, 'Subject: minutes\nContent-Type: text/plain\n\n' + `${'All work and no play makes a long message. '.repeat(2).slice(0, 71)}\n`.repeat((10 * 1024 * 1024) / 72));
    const [data, control] = await copySpool(h.spool, 'D-plain', 'C-ipv4-mapped');
    const largeReply = sendRequest(h.socket(), requestFor(large, control!));
    // One after the other, so that some of them arrive while the large one is being scanned.
    const smallReplies: Array<{ reply: string; ms: number }> = [];
    for (let i = 0; i < 5; i++) {
      const started = Date.now();
      const reply = await sendRequest(h.socket(), requestFor(data!, control!));
      smallReplies.push({ reply, ms: Date.now() - started });
    }
    // Parsing the large message whole held every other message for about 14 s.
    for (const { reply, ms } of smallReplies) {
      assert.equal(reply, '200 Ok\n');
      assert.ok(ms < 5000, `a small message waited ${ms} ms`);
    }
    assert.equal(await largeReply, '200 Ok\n');
    assert.equal(await filter.stop(), 0);
  });

  it('gives a module that blocks the thread past its deadline its timeout outcome, not its late answer', async () => {
    const config = await h.configFile(`modules:\n  - module: ${scripted}\n    options: { behaviour: block, ms: 600, reply: "250 too late" }\n    timeout: 0.1\n    onTimeout: reject\n`);
    const filter = await h.startReady(['--name', 'mk', '--config', config]);
    assert.match(await sendRequest(h.socket(), await h.plainRequest()), /^554 /);
    assert.ok(filter.records.some((r) => r.event === 'module-timeout'));
    assert.equal(await filter.stop(), 0);
  });
});
