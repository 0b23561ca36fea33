/**
 * Per-test set-up for tests that run the daemon under a fake courierfilter: a scratch directory
 * with Courier's `localstatedir` layout (`allfilters/`, `filters/`, `tmp/1795/` as the spool),
 * the daemons started in the test (killed afterwards), and the requests Courier would send.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach } from 'node:test';
import { FakeCourierfilter, requestFor } from './fake-courierfilter.js';
import { copySpool, etcFixture, scratch } from './support.js';

export interface DaemonHarness {
  /** The test's scratch directory. */
  readonly dir: string;
  /** Courier's localstatedir inside it. */
  readonly var: string;
  /** The spool directory messages are copied into (`var/tmp/1795`). */
  readonly spool: string;
  /** Daemons started in this test. */
  readonly running: FakeCourierfilter[];
  /** Writes the configuration file and returns its path. */
  configFile(yaml: string): Promise<string>;
  /** Starts a daemon (Courier's directories pointed at the scratch directory). */
  start(args: string[], extra?: { script?: string; env?: NodeJS.ProcessEnv }): FakeCourierfilter;
  /** Starts a daemon and waits until it closed fd 3. */
  startReady(args: string[], extra?: { script?: string; env?: NodeJS.ProcessEnv }): Promise<FakeCourierfilter>;
  /** A request for a plain message whose files sit in the spool, as Courier's would. */
  plainRequest(): Promise<string>;
  /** Path of the socket of the daemon named `name`. */
  socket(name?: string): string;
}

/** Registers the hooks of a daemon test suite; the returned object is valid inside each test. */
export function useDaemonHarness(): DaemonHarness {
  let remove: () => Promise<void> = async () => undefined;
  const harness = {
    dir: '',
    var: '',
    spool: '',
    running: [] as FakeCourierfilter[],
    async configFile(yaml: string): Promise<string> {
      const path = join(harness.dir, 'milterkit.yaml');
      await writeFile(path, yaml);
      return path;
    },
    start(args: string[], extra: { script?: string; env?: NodeJS.ProcessEnv } = {}): FakeCourierfilter {
      const filter = new FakeCourierfilter({
        dir: join(harness.dir, `run${harness.running.length}`),
        args: ['--localstatedir', harness.var, '--sysconfdir', etcFixture, '--courier-config', join(harness.dir, 'no-courier-config'), ...args],
        ...extra,
      });
      harness.running.push(filter);
      return filter;
    },
    async startReady(args: string[], extra?: { script?: string; env?: NodeJS.ProcessEnv }): Promise<FakeCourierfilter> {
      await mkdir(join(harness.dir, `run${harness.running.length}`));
      const filter = harness.start(args, extra);
      await filter.ready;
      return filter;
    },
    async plainRequest(): Promise<string> {
      const [data, ctl] = await copySpool(harness.spool, 'D-plain', 'C-ipv4-mapped');
      return requestFor(data!, ctl!);
    },
    socket(name = 'mk'): string {
      return join(harness.var, 'allfilters', name);
    },
  };
  beforeEach(async () => {
    const made = await scratch('mkc-');
    harness.dir = made.dir;
    remove = made.remove;
    harness.var = join(made.dir, 'var');
    harness.spool = join(harness.var, 'tmp/1795');
    for (const sub of ['allfilters', 'filters', 'tmp/1795']) await mkdir(join(harness.var, sub), { recursive: true });
    harness.running = [];
  });
  afterEach(async () => {
    for (const filter of harness.running) filter.kill();
    await Promise.all(harness.running.map((f) => f.exited));
    await remove();
  });
  return harness;
}
