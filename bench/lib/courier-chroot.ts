/**
 * Runs the Courier peers inside the Courier chroot (scripts/prerequisites/30-courier.sh), in a
 * private mount namespace of their own: its socket directory is a fresh tmpfs (so a courierfilter
 * started by the Courier end-to-end test cannot remove the benchmark's sockets, and they vanish
 * with the namespace), the project and this Node are bind-mounted into it, and so is the
 * benchmark's Courier::Filter configuration over the package's fixed path. Nothing of it outlives
 * the run: the namespace ends when its holder process does.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync, rmdirSync, rmSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { join } from 'node:path';

const READY_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 10_000;
/** Where the project and Node appear inside the chroot. */
export const CHROOT_PROJECT = '/opt/milterkit-bench';
export const CHROOT_NODE = '/opt/milterkit-bench-node';
/** Courier::Filter reads its configuration from this fixed path (Courier::Config). */
export const PERL_CONFIG = '/etc/courier/filters/courier-filter-perl.conf';
export const SOCKET_DIR = '/var/lib/courier/allfilters';

/** Courier's mail user in the chroot, from its /etc/passwd. */
export function mailUser(chroot: string): { uid: number; gid: number } {
  const line = readFileSync(join(chroot, 'etc/passwd'), 'utf8')
    .split('\n')
    .find((entry) => entry.startsWith('courier:'));
  if (!line) throw new Error(`no courier user in ${chroot}/etc/passwd`);
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

/** A filter process started as courierfilter starts one. */
export interface CourierDaemon {
  name: string;
  pid: number;
  /** The socket's path on the host, inside the namespace. */
  socket: string;
  stop(): Promise<void>;
}

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve())));
}

/** The private mount namespace, held open by a `cat` waiting on its stdin. */
export class BenchNamespace {
  private constructor(
    readonly chroot: string,
    private readonly holder: ChildProcess,
  ) {}

  get pid(): number {
    return this.holder.pid!;
  }

  /** Creates the namespace and its mounts; `perlConfig` is the host path of the Courier::Filter configuration. */
  static async open(chroot: string, repoRoot: string, perlConfig: string): Promise<BenchNamespace> {
    const script = [
      'set -e',
      `C='${chroot}'`,
      `mount -t tmpfs -o mode=0750 tmpfs "$C${SOCKET_DIR}"`,
      `chroot "$C" chown courier:courier ${SOCKET_DIR}`,
      `mkdir -p "$C${CHROOT_PROJECT}" && touch "$C${CHROOT_NODE}"`,
      `mount --bind '${repoRoot}' "$C${CHROOT_PROJECT}"`,
      `mount --bind '${process.execPath}' "$C${CHROOT_NODE}"`,
      `mount --bind '${perlConfig}' "$C${PERL_CONFIG}"`,
      'mountpoint -q "$C/proc" || mount -t proc proc "$C/proc"',
      'echo ready',
      'exec cat >/dev/null',
    ].join('\n');
    const holder = spawn('unshare', ['--mount', '--propagation', 'private', '--', 'sh', '-c', script], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    holder.stderr!.setEncoding('utf8').on('data', (text: string) => (stderr += text));
    const ready = await new Promise<boolean>((resolve) => {
      createInterface({ input: holder.stdout! }).once('line', (line) => resolve(line === 'ready'));
      holder.once('exit', () => resolve(false));
    });
    if (!ready) throw new Error(`cannot set up the mount namespace for the chroot: ${stderr.trim() || 'unshare failed'}`);
    return new BenchNamespace(chroot, holder);
  }

  /** Runs a host program inside the namespace (the load driver, which connects to the sockets). */
  command(program: string, args: string[]): { command: string; args: string[] } {
    return { command: 'nsenter', args: ['-t', String(this.pid), '-m', '--', program, ...args] };
  }

  /**
   * Starts a filter as courierfilter does: as Courier's mail user, stdin a pipe whose end means
   * stop, fd 3 a pipe it closes once its socket is live, stdout and stderr to `logFile`; only
   * courierd's environment. Resolves when fd 3 is closed and the socket exists.
   */
  async startFilter(name: string, argv: string[], logFile: string): Promise<CourierDaemon> {
    const logFd = openSync(logFile, 'a');
    // Full paths: the environment is the filter's, whose PATH has no sbin.
    const child = spawn('/usr/bin/nsenter', ['-t', String(this.pid), '-m', '--', '/usr/sbin/chroot', '--userspec=courier:courier', this.chroot, ...argv], {
      stdio: ['pipe', logFd, logFd, 'pipe'],
      env: { PATH: '/usr/bin:/bin:/usr/local/bin', SHELL: '/bin/sh', sysconfdir: '/etc/courier', LANG: 'C' },
      cwd: '/',
    });
    closeSync(logFd);
    const stop = async (): Promise<void> => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.stdin!.end();
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
      await exited(child);
      clearTimeout(timer);
    };
    const readyPipe = child.stdio[3] as NodeJS.ReadableStream;
    const closed = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), READY_TIMEOUT_MS);
      readyPipe.on('data', () => undefined);
      readyPipe.once('end', () => (clearTimeout(timer), resolve(true)));
    });
    // A process that failed to start closes fd 3 too, by exiting.
    await new Promise((resolve) => setTimeout(resolve, 100));
    const ready = closed && child.exitCode === null && child.signalCode === null;
    if (!ready) {
      await stop();
      const log = readFileSync(logFile, 'utf8').trim().split('\n').slice(-5).join(' | ');
      throw new Error(`${name} did not get ready (fd 3 not closed within ${READY_TIMEOUT_MS / 1000} s)${log ? `; its log: ${log}` : ''}`);
    }
    return { name, pid: child.pid!, socket: join(this.chroot, SOCKET_DIR, name), stop };
  }

  /** Ends the namespace: its mounts go with it, then the empty mount points it made in the chroot. */
  async close(): Promise<void> {
    this.holder.stdin!.end();
    await exited(this.holder);
    rmSync(join(this.chroot, CHROOT_NODE), { force: true });
    try {
      rmdirSync(join(this.chroot, CHROOT_PROJECT)); // only ever empty outside the namespace
    } catch {
      // Gone already, or not empty: left alone.
    }
  }
}
