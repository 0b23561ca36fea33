/**
 * Drives Debian's real Courier inside the chroot built by `scripts/prerequisites/30-courier.sh`: puts
 * the built project and this machine's Node into it, enables the milterkit filter with
 * `filterctl start`, runs Courier's daemons on a loopback port, and stops everything again.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { access, chmod, cp, mkdir, readdir, readFile, readlink, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Maildir } from '../e2e/harness/maildir.js';

const run = promisify(execFile);

/** Where the install step builds the chroot (override with MILTERKIT_COURIER_CHROOT). */
export const DEFAULT_CHROOT = '/var/cache/milterkit/courier-chroot';
/** ESMTP port inside the Courier range of this project (override with MILTERKIT_COURIER_SMTP_PORT). */
export const DEFAULT_SMTP_PORT = 2625;
const BASE_STAMP = '.milterkit-base-v1';
const FILTER_NAME = 'milterkit';
/** Where {@link CourierChroot.install} puts the built project, as seen inside the chroot. */
export const CHROOT_PROJECT_DIR = '/opt/milterkit';
/** Where the aliasdir's default delivery (set up by 30-courier.sh) puts mail for example.com. */
const CASES_MAILBOX = 'var/mail/cases';

const SYSLOG_LISTENER = `
import os, socket
path = '/dev/log'
try:
    os.unlink(path)
except FileNotFoundError:
    pass
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
os.chmod(path, 0o666)
with open('/var/log/milterkit-e2e.log', 'ab', buffering=0) as log:
    while True:
        log.write(s.recv(65536).rstrip(b'\\0\\n') + b'\\n')
`;

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

export class CourierChroot {
  readonly root: string;
  readonly port: number;
  private syslog: ChildProcess | undefined;
  private mountedProc = false;

  constructor(root = process.env.MILTERKIT_COURIER_CHROOT ?? DEFAULT_CHROOT, port = Number(process.env.MILTERKIT_COURIER_SMTP_PORT ?? DEFAULT_SMTP_PORT)) {
    this.root = root;
    this.port = port;
  }

  private path(inside: string): string {
    return join(this.root, inside);
  }

  /** Fails with a clear message when the chroot cannot be used. */
  async check(): Promise<void> {
    if (process.getuid?.() !== 0) throw new Error('the real-Courier test needs root (chroot, mount)');
    if (!(await exists(this.path(BASE_STAMP)))) {
      throw new Error(`no Courier chroot at ${this.root}: run scripts/prerequisites/30-courier.sh (it builds it with debootstrap)`);
    }
  }

  /** Runs a command inside the chroot. */
  async exec(command: string, args: string[] = [], timeoutMs = 60_000): Promise<string> {
    const { stdout } = await run('chroot', [this.root, command, ...args], { timeout: timeoutMs });
    return stdout;
  }

  /** Copies the built project, this Node binary and the filter configuration into the chroot. */
  async install(repoRoot: string, configYaml: string): Promise<void> {
    const target = this.path(CHROOT_PROJECT_DIR);
    await rm(target, { recursive: true, force: true });
    await mkdir(join(target, 'dist/test'), { recursive: true });
    await cp(join(repoRoot, 'package.json'), join(target, 'package.json'));
    await cp(join(repoRoot, 'node_modules'), join(target, 'node_modules'), { recursive: true });
    await cp(join(repoRoot, 'dist/src'), join(target, 'dist/src'), { recursive: true });
    await cp(join(repoRoot, 'dist/examples'), join(target, 'dist/examples'), { recursive: true });
    await cp(join(repoRoot, 'dist/test/courier'), join(target, 'dist/test/courier'), { recursive: true });
    // The conformance cases' scripted filter (test/courier/e2e/scripted.ts re-exports it).
    await cp(join(repoRoot, 'dist/test/e2e/runner'), join(target, 'dist/test/e2e/runner'), { recursive: true });
    await chmod(join(target, 'dist/src/cli/milterkit-courier.js'), 0o755);
    // Debian 12's own nodejs is v18; the project needs Node 20, the one running this test.
    await mkdir(this.path('usr/local/bin'), { recursive: true });
    await cp(process.execPath, this.path('usr/local/bin/node'));
    const available = this.path(`usr/lib/courier/filters/${FILTER_NAME}`);
    await rm(available, { force: true });
    await symlink(`${CHROOT_PROJECT_DIR}/dist/src/cli/milterkit-courier.js`, available);
    await writeFile(this.path(`etc/courier/filters/${FILTER_NAME}.yaml`), configYaml);
  }

  /** Empties the test users' mailboxes and the log. */
  async reset(users: string[]): Promise<void> {
    for (const user of users) {
      for (const sub of ['new', 'cur', 'tmp']) {
        const dir = this.path(`home/${user}/Maildir/${sub}`);
        for (const name of await readdir(dir).catch(() => [] as string[])) await rm(join(dir, name), { force: true });
      }
    }
    await writeFile(this.path('var/log/milterkit-e2e.log'), '');
  }

  /**
   * The mailbox of example.com (every address of the conformance cases): one file per delivered
   * recipient with its envelope, as the Postfix and Sendmail harnesses deliver.
   */
  async casesMailbox(): Promise<Maildir> {
    const id = async (flag: string) => Number((await this.exec('id', [flag, 'courier'])).trim());
    return new Maildir(this.path(CASES_MAILBOX), { uid: await id('-u'), gid: await id('-g') });
  }

  /** Starts syslog capture, authdaemond, courierfilter, the filter (filterctl), courierd and esmtpd. */
  async start(): Promise<void> {
    await this.stop();
    const procMounted = (await readFile(this.path('proc/self/stat'), 'utf8').catch(() => '')) !== '';
    if (!procMounted) {
      await run('mount', ['-t', 'proc', 'proc', this.path('proc')]);
      this.mountedProc = true;
    }
    await rm(this.path('dev/log'), { force: true });
    this.syslog = spawn('chroot', [this.root, 'python3', '-u', '-c', SYSLOG_LISTENER], { stdio: 'ignore' });
    await until('the syslog socket', 10_000, async () => ((await exists(this.path('dev/log'))) ? true : undefined));
    await this.exec('/usr/sbin/authdaemond', ['start']);
    await this.exec('/usr/sbin/courierfilter', ['start']);
    // Enable the filter the way an administrator does: filterctl links it and HUPs courierfilter.
    await this.exec('filterctl', ['start', FILTER_NAME]);
    await until('the milterkit socket in allfilters', 30_000, async () =>
      (await exists(this.path(`var/lib/courier/allfilters/${FILTER_NAME}`))) ? true : undefined,
    );
    await this.exec('/usr/sbin/courier', ['start']);
    await this.exec('/usr/sbin/esmtpd', ['start']);
    await until(`ESMTP on 127.0.0.1:${this.port}`, 30_000, () =>
      new Promise<true | undefined>((resolve) => {
        const probe = createConnection(this.port, '127.0.0.1');
        probe.once('connect', () => (probe.destroy(), resolve(true)));
        probe.once('error', () => resolve(undefined));
      }),
    );
  }

  /**
   * Replaces the filter's configuration and reloads it the way an administrator does (SIGHUP to
   * the daemon courierfilter started); resolves once the daemon logs that it runs the new chain.
   * @throws when the daemon keeps its old chain (the new file is unusable) or is not running
   */
  async reloadFilter(configYaml: string, timeoutMs = 30_000): Promise<void> {
    await writeFile(this.path(`etc/courier/filters/${FILTER_NAME}.yaml`), configYaml);
    const outcomes = /courierfilter: .*"event":"(reloaded|reload-failed)"/g;
    const before = (await this.log()).match(outcomes)?.length ?? 0;
    process.kill(await this.filterPid(), 'SIGHUP');
    const outcome = await until('the filter to reload its configuration', timeoutMs, async () => (await this.log()).match(outcomes)?.[before]);
    if (outcome.includes('reload-failed')) throw new Error(`the filter kept its old chain: ${outcome}`);
  }

  /** The process id of the milterkit daemon running in this chroot. */
  private async filterPid(): Promise<number> {
    const chroot = await realpath(this.root);
    for (const entry of await readdir('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      if ((await readlink(`/proc/${entry}/root`).catch(() => '')) !== chroot) continue;
      const argv = (await readFile(`/proc/${entry}/cmdline`, 'latin1').catch(() => '')).split('\0');
      if (argv.some((arg) => arg.endsWith(`/filters/active/${FILTER_NAME}`) || arg.endsWith(`/filters/${FILTER_NAME}`))) return Number(entry);
    }
    throw new Error(`no ${FILTER_NAME} filter process runs in ${this.root}`);
  }

  /** Stops every daemon it may have started (also leftovers of an interrupted run). */
  async stop(): Promise<void> {
    for (const [command, args] of [
      ['/usr/sbin/esmtpd', ['stop']],
      ['/usr/sbin/courier', ['stop']],
      ['/usr/sbin/courierfilter', ['stop']],
      ['/usr/sbin/authdaemond', ['stop']],
    ] as const) {
      await this.exec(command, [...args], 60_000).catch(() => undefined);
    }
    await rm(this.path(`etc/courier/filters/active/${FILTER_NAME}`), { force: true });
    if (this.syslog) {
      this.syslog.kill();
      await new Promise((resolve) => (this.syslog!.exitCode !== null ? resolve(undefined) : this.syslog!.once('exit', resolve)));
      this.syslog = undefined;
    }
    if (this.mountedProc) {
      await run('umount', [this.path('proc')]).catch(() => run('umount', ['-l', this.path('proc')]));
      this.mountedProc = false;
    }
  }

  /** The syslog lines captured so far. */
  async log(): Promise<string> {
    return readFile(this.path('var/log/milterkit-e2e.log'), 'utf8').catch(() => '');
  }

  /** Waits until courierd logs that a queued message is completely delivered. */
  async waitForCompletion(queueIdTail: string, timeoutMs = 60_000): Promise<void> {
    await until(`delivery of ${queueIdTail}`, timeoutMs, async () =>
      new RegExp(`courierd: completed,id=\\S*${queueIdTail.replace(/\./g, '\\.')}`).test(await this.log()) ? true : undefined,
    );
  }

  /** Messages in a user's Maildir/new. */
  async mailbox(user: string): Promise<string[]> {
    const dir = this.path(`home/${user}/Maildir/new`);
    const names = (await readdir(dir).catch(() => [] as string[])).sort();
    return Promise.all(names.map((name) => readFile(join(dir, name), 'latin1')));
  }
}
