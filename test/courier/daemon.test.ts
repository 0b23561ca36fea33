import assert from 'node:assert/strict';
import { cp, lstat, mkdir, readdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { useDaemonHarness } from './daemon-harness.js';
import { nameFromInvocation } from '../../src/cli/courier.js';
import { daemonBin, FakeCourierfilter, requestFor, sendRequest } from './fake-courierfilter.js';
import { copySpool, etcFixture, spoolFixtures } from './support.js';

/** Waits (bounded by the test runner's timeout) until the filter has logged an event. */
async function untilLogged(filter: FakeCourierfilter, event: string): Promise<void> {
  while (!filter.records.some((r) => r.event === event)) await new Promise((r) => setTimeout(r, 20));
}

/** Sends SIGHUP and waits until the filter has logged the outcome of the reload. */
async function reloadAndWait(filter: FakeCourierfilter): Promise<void> {
  const reloads = () => filter.records.filter((r) => r.event === 'reloaded' || r.event === 'reload-failed').length;
  const before = reloads();
  filter.signal('SIGHUP');
  while (reloads() === before) await new Promise((r) => setTimeout(r, 20));
}

const modulesDir = fileURLToPath(new URL('./modules/', import.meta.url));
const scripted = join(modulesDir, 'scripted.js');
const barrier = join(modulesDir, 'barrier.js');

describe('Courier daemon under a fake courierfilter', { timeout: 120_000 }, () => {
  const h = useDaemonHarness();

  it('creates NAME (mode 0660) in allfilters, closes fd 3, answers, and stops on stdin EOF', async () => {
    await writeFile(join(h.var, 'filters', 'mkfilter'), 'stale socket of an earlier run in the other directory');
    const config = await h.configFile(`modules:\n  - module: add_header\n    options: { name: X-Test, value: daemon }\n`);
    const filter = await h.startReady(['--name', 'mkfilter', '--config', config]);
    const socketPath = join(h.var, 'allfilters', 'mkfilter');
    const info = await lstat(socketPath);
    assert.ok(info.isSocket());
    assert.equal(info.mode & 0o777, 0o660);
    assert.deepEqual((await readdir(join(h.var, 'allfilters'))).sort(), ['mkfilter']);
    assert.deepEqual(await readdir(join(h.var, 'filters')), []);

    const [data, ctl] = await copySpool(join(h.var, 'tmp/1795'), 'D-plain', 'C-ipv4-mapped');
    assert.equal(await sendRequest(socketPath, requestFor(data!, ctl!)), '200 Ok\n');
    assert.match(await readFile(data!, 'utf8'), /\nX-Test: daemon\n\nHello Alice/);

    assert.equal(await filter.stop(), 0);
    await assert.rejects(lstat(socketPath), { code: 'ENOENT' });
    const events = filter.records.map((r) => r.event);
    assert.ok(events.includes('listening') && events.includes('stopping') && events.includes('stopped'), events.join());
  });

  it('takes its name from the active link it was started through', async () => {
    assert.equal(nameFromInvocation('/etc/courier/filters/active/milterkit-courier'), 'milterkit-courier');
    assert.equal(nameFromInvocation('/opt/milterkit/dist/src/cli/milterkit-courier.js'), 'milterkit');
    const link = join(h.dir, 'linkedname');
    await symlink(daemonBin, link);
    const config = await h.configFile('modules: []\n');
    const filter = await h.startReady(['--config', config], { script: link });
    assert.ok((await lstat(join(h.var, 'allfilters', 'linkedname'))).isSocket());
    assert.equal(await filter.stop(), 0);
  });

  it('replies with one code on every line of a multi-line reject, newline-terminated', async () => {
    const config = await h.configFile(`modules:\n  - module: ${scripted}\n    options: { reply: "550 5.7.1 first line\\nsecond line" }\n`);
    const filter = await h.startReady(['--name', 'mk', '--config', config]);
    const reply = await sendRequest(join(h.var, 'allfilters', 'mk'), await h.plainRequest());
    assert.equal(reply, '550-5.7.1 first line\n550 second line\n');
    assert.equal(await filter.stop(), 0);
  });

  it('resolves relative paths under localstatedir/tmp and survives malformed requests', async () => {
    const config = await h.configFile(`requestTimeout: 0.3\nmodules:\n  - module: ${scripted}\n    options: { reply: "250 seen" }\n`);
    const filter = await h.startReady(['--name', 'mk', '--config', config]);
    const socketPath = join(h.var, 'allfilters', 'mk');
    await copySpool(join(h.var, 'tmp/1795'), 'D-plain', 'C-ipv4-mapped');
    assert.equal(await sendRequest(socketPath, requestFor('1795/D-plain', '1795/C-ipv4-mapped')), '250 seen\n');
    assert.match(await sendRequest(socketPath, 'only-one-line\n\n'), /^451 /);
    assert.match(await sendRequest(socketPath, requestFor('1795/D-plain', '1795/missing-control')), /^451 /);
    // Cut short: the peer closes its side, or goes silent until the request deadline.
    assert.match(await sendRequest(socketPath, Buffer.from('/cut/short'), { halfClose: true }), /^451 /);
    assert.match(await sendRequest(socketPath, Buffer.from('/cut/short')), /^451 /);
    assert.equal(await sendRequest(socketPath, requestFor('1795/D-plain', '1795/C-ipv4-mapped')), '250 seen\n');
    assert.equal(await filter.stop(), 0);
  });

  it('handles connections concurrently, up to maxConnections', async () => {
    const config = await h.configFile(`maxConnections: 3\nmodules:\n  - module: ${barrier}\n    options: { parties: 3 }\n    timeout: 20\n`);
    const filter = await h.startReady(['--name', 'mk', '--config', config]);
    const socketPath = join(h.var, 'allfilters', 'mk');
    const request = await h.plainRequest();
    const replies = await Promise.all([1, 2, 3].map(() => sendRequest(socketPath, request)));
    assert.deepEqual(replies, Array(3).fill('250 released together with 2 other(s)\n'));
    assert.equal(await filter.stop(), 0);
  });

  it('answers "busy" beyond maxConnections instead of queueing without bound', async () => {
    // Two messages held inside the module (both called before either is answered: handled at
    // once); the third arrives only then, so it meets the limit however fast the daemon is.
    const config = await h.configFile(`maxConnections: 2\nmodules:\n  - module: ${scripted}\n    options: { behaviour: hang }\n    timeout: 2\n    onTimeout: reject\n`);
    const filter = await h.startReady(['--name', 'mk', '--config', config]);
    const socketPath = join(h.var, 'allfilters', 'mk');
    const request = await h.plainRequest();
    const held = [1, 2].map(() => sendRequest(socketPath, request));
    while (filter.records.filter((r) => r.event === 'scripted-called').length < 2) await new Promise((r) => setTimeout(r, 20));
    assert.equal(await sendRequest(socketPath, request), '451 4.3.2 Mail filter busy, please try again later\n');
    assert.deepEqual(await Promise.all(held), ['554 5.7.1 Message refused by mail filter\n', '554 5.7.1 Message refused by mail filter\n']);
    assert.equal(await filter.stop(), 0);
  });

  it('lets an in-flight message finish after stdin EOF, then exits', async () => {
    const config = await h.configFile(`shutdownTimeout: 30\nmodules:\n  - module: ${scripted}\n    options: { behaviour: hang }\n    timeout: 0.5\n    onTimeout: reject\n`);
    const filter = await h.startReady(['--name', 'mk', '--config', config]);
    const socketPath = join(h.var, 'allfilters', 'mk');
    const inFlight = sendRequest(socketPath, await h.plainRequest());
    await untilLogged(filter, 'scripted-called');
    filter.closeStdin();
    assert.equal(await inFlight, '554 5.7.1 Message refused by mail filter\n');
    assert.equal(await filter.exited, 0);
    const stopping = filter.records.find((r) => r.event === 'stopping');
    assert.equal(stopping?.active, 1);
  });

  it('bounds the drain: unfinished messages are cut off after shutdownTimeout', async () => {
    const config = await h.configFile(`shutdownTimeout: 0.2\nmodules:\n  - module: ${scripted}\n    options: { behaviour: hang }\n    timeout: 600\n`);
    const filter = await h.startReady(['--name', 'mk', '--config', config]);
    const inFlight = sendRequest(join(h.var, 'allfilters', 'mk'), await h.plainRequest());
    await untilLogged(filter, 'scripted-called');
    filter.closeStdin();
    assert.equal(await inFlight, '');
    assert.equal(await filter.exited, 0);
    assert.ok(filter.records.some((r) => r.event === 'shutdown-timeout'));
  });

  it('logs an error thrown outside any module promise and keeps serving', async () => {
    const config = await h.configFile(`modules:\n  - module: ${scripted}\n    options: { behaviour: stray-throw }\n`);
    const filter = await h.startReady(['--name', 'mk', '--config', config]);
    const socketPath = join(h.var, 'allfilters', 'mk');
    const request = await h.plainRequest();
    assert.equal(await sendRequest(socketPath, request), '200 Ok\n');
    await untilLogged(filter, 'uncaught');
    assert.equal(await sendRequest(socketPath, request), '200 Ok\n');
    assert.equal(await filter.stop(), 0);
  });

  it('refuses to start when a live filter already answers on the name, and still closes fd 3', async () => {
    const config = await h.configFile('modules: []\n');
    const first = await h.startReady(['--name', 'mk', '--config', config]);
    const second = await h.startReady(['--name', 'mk', '--config', config]);
    assert.equal(await second.exited, 3);
    assert.equal(await sendRequest(join(h.var, 'allfilters', 'mk'), await h.plainRequest()), '200 Ok\n');
    assert.equal(await first.stop(), 0);
  });

  it('replaces a stale socket nobody listens on', async () => {
    const stale = createServer();
    await new Promise<void>((resolve) => stale.listen(join(h.var, 'allfilters', 'mk'), resolve));
    // Drop the listener but keep the file, as a crashed filter would.
    (stale as unknown as { _handle: { close(): void } })._handle.close();
    const filter = await h.startReady(['--name', 'mk', '--config', await h.configFile('modules: []\n')]);
    assert.equal(await sendRequest(join(h.var, 'allfilters', 'mk'), await h.plainRequest()), '200 Ok\n');
    assert.equal(await filter.stop(), 0);
  });

  it('without a usable configuration it still answers, with a tempfail, instead of letting mail through', async () => {
    const filter = await h.startReady(['--name', 'mk', '--config', await h.configFile('modules: [{module: x, onError: sometimes}]\n')]);
    const reply = await sendRequest(join(h.var, 'allfilters', 'mk'), await h.plainRequest());
    assert.equal(reply, '451 4.3.0 Mail filter temporarily unavailable, please try again later\n');
    assert.ok(filter.records.some((r) => r.event === 'config-error' && /onError/.test(JSON.stringify(r.err))));
    assert.equal(await filter.stop(), 0);
  });

  it('reads the socket directory from NAME-mode and the config from SYSCONFDIR/filters/NAME.yaml', async () => {
    const etc = join(h.dir, 'etc');
    await cp(etcFixture, etc, { recursive: true });
    // git keeps no empty directories: the fixture has no filters/ of its own.
    await mkdir(join(etc, 'filters'), { recursive: true });
    await writeFile(join(etc, 'filters', 'mk-mode'), 'filters\n');
    await writeFile(join(etc, 'filters', 'mk.yaml'), `modules:\n  - module: ${scripted}\n    options: { reply: "250 from default config" }\n`);
    await mkdir(join(h.dir, `run${h.running.length}`));
    const filter = new FakeCourierfilter({
      dir: join(h.dir, `run${h.running.length}`),
      args: ['--name', 'mk', '--localstatedir', h.var, '--sysconfdir', etc, '--courier-config', join(h.dir, 'none')],
    });
    h.running.push(filter);
    await filter.ready;
    const reply = await sendRequest(join(h.var, 'filters', 'mk'), await h.plainRequest());
    assert.equal(reply, '250 from default config\n');
    assert.equal(await filter.stop(), 0);
  });

  it('reloads its configuration on SIGHUP and keeps the h.running one when the new one is broken', async () => {
    const config = await h.configFile(`modules:\n  - module: ${scripted}\n    options: { reply: "250 first" }\n`);
    const filter = await h.startReady(['--name', 'mk', '--config', config]);
    const socketPath = join(h.var, 'allfilters', 'mk');
    const request = await h.plainRequest();
    assert.equal(await sendRequest(socketPath, request), '250 first\n');
    await writeFile(config, `modules:\n  - module: ${scripted}\n    options: { reply: "250 second" }\n`);
    await reloadAndWait(filter);
    assert.equal(await sendRequest(socketPath, request), '250 second\n');
    await writeFile(config, 'modules: [{module: x, onError: sometimes}]\n');
    await reloadAndWait(filter);
    assert.equal(await sendRequest(socketPath, request), '250 second\n');
    assert.ok(filter.records.some((r) => r.event === 'reload-failed'));
    assert.equal(await filter.stop(), 0);
  });

  it('closes what its modules opened: the old chain after a reload, the running one when it stops', async () => {
    const log = join(h.dir, 'closing.log');
    const chainOf = (tag: string) =>
      `courier: { socketDirectory: filters }\nchain:\n  - filter: ${join(modulesDir, 'api-closing.js')}\n    options: { log: ${JSON.stringify(log)}, tag: api-${tag} }\n`;
    const modulesOf = (tag: string) => `modules:\n  - module: ${join(modulesDir, 'closing.js')}\n    options: { log: ${JSON.stringify(log)}, tag: classic-${tag} }\n`;
    const config = await h.configFile(chainOf('first'));
    const filter = await h.startReady(['--name', 'mk', '--config', config]);
    const socketPath = join(h.var, 'filters', 'mk');
    assert.equal(await sendRequest(socketPath, await h.plainRequest()), '200 Ok\n');
    await writeFile(config, modulesOf('second'));
    await reloadAndWait(filter);
    assert.equal(await sendRequest(join(h.var, 'filters', 'mk'), await h.plainRequest()), '200 Ok\n');
    assert.equal(await filter.stop(), 0);
    assert.deepEqual((await readFile(log, 'utf8')).split('\n'), ['init api-first', 'init classic-second', 'close api-first', 'close classic-second', '']);
  });

  it('runs a configuration in the format of serve --config, reloads it on SIGHUP and keeps the running chain when the new one is bad', async () => {
    const stamp = join(modulesDir, 'api-stamp.js');
    const config = await h.configFile(`courier: { socketDirectory: filters }\nchain:\n  - filter: ${stamp}\n    options: { rejectSender: bob@sender.example }\n`);
    const filter = await h.startReady(['--name', 'mk', '--config', config]);
    const socketPath = join(h.var, 'filters', 'mk');
    const request = await h.plainRequest();
    assert.equal(await sendRequest(socketPath, request), '550 5.7.1 Sender refused by api-stamp\n');
    await writeFile(config, `courier: { socketDirectory: filters }\nchain:\n  - filter: ${stamp}\n`);
    await reloadAndWait(filter);
    assert.equal(await sendRequest(socketPath, request), '200 Ok\n');
    await writeFile(config, `courier: { socketDirectory: filters }\nchain:\n  - filter: ${stamp}\n    options: { colour: blue }\n`);
    await reloadAndWait(filter);
    assert.equal(await sendRequest(socketPath, request), '200 Ok\n');
    const failed = filter.records.find((r) => r.event === 'reload-failed');
    assert.match(JSON.stringify(failed?.err), new RegExp(`${config.replace(/[.]/g, '\\.')}:4:\\d+: .*colour`));
    assert.equal(await filter.stop(), 0);
  });

  it('check: runs the chain once on saved files (given through links too) and prints the reply', async () => {
    const config = await h.configFile(`modules:\n  - deliveredto\n`);
    const linked = join(h.dir, 'D-linked');
    await symlink(join(spoolFixtures, 'D-looped'), linked);
    const { execFile } = await import('node:child_process');
    const output = await new Promise<string>((resolve, reject) =>
      execFile(process.execPath, [daemonBin, 'check', '--config', config, '--sysconfdir', etcFixture, '--localstatedir', h.var, '--courier-config', join(h.dir, 'none'), linked, join(spoolFixtures, 'C-ipv4-mapped')], (error, stdout) =>
        error ? reject(error) : resolve(stdout),
      ),
    );
    assert.equal(output, '501 Mail loop - already have my Delivered-To: header.\n');
  });

  it('asks courier-config without handing it courierfilter\'s fd 3', async () => {
    const seen = join(h.dir, 'fd3-of-courier-config');
    const fake = join(h.dir, 'courier-config');
    await writeFile(fake, `#!/bin/sh\nreadlink /proc/self/fd/3 > ${seen}\necho localstatedir=${h.var}\necho sysconfdir=${etcFixture}\n`, { mode: 0o755 });
    await mkdir(join(h.dir, `run${h.running.length}`));
    const filter = new FakeCourierfilter({ dir: join(h.dir, `run${h.running.length}`), args: ['--name', 'mk', '--courier-config', fake, '--config', await h.configFile('modules: []\n')] });
    h.running.push(filter);
    await filter.ready;
    const fd3 = (await readFile(seen, 'utf8')).trim();
    assert.notEqual(fd3, filter.readyFifo);
    assert.match(fd3, /^(socket|pipe):/);
    assert.ok((await stat(join(h.var, 'allfilters', 'mk'))).isSocket());
    assert.equal(await filter.stop(), 0);
  });
});
