/**
 * A stand-in for Courier's courierfilter, as far as one filter can tell: the filter runs with a
 * pipe on stdin (EOF = stop) and a pipe on fd 3 (closing it = ready), both real FIFOs like
 * courierfilter's pipe(2) pairs. Messages are sent the way Courier's submit does: connect to the
 * socket, write the paths and an empty line, read the reply until the filter closes.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, constants, openSync } from 'node:fs';
import { createConnection, Socket } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The daemon's standalone executable (compiled). */
export const daemonBin = fileURLToPath(new URL('../../src/cli/milterkit-courier.js', import.meta.url));

/** Opens both ends of a named FIFO without blocking: returns [readFd, writeFd]. */
function fifo(path: string): [number, number] {
  const made = spawnSync('mkfifo', ['-m', '600', path]);
  if (made.status !== 0) throw new Error(`mkfifo failed: ${made.stderr}`);
  const readFd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  const writeFd = openSync(path, constants.O_WRONLY);
  return [readFd, writeFd];
}

export interface FakeCourierfilterOptions {
  /** Directory for the FIFOs. */
  dir: string;
  /** Arguments for the daemon. */
  args: string[];
  /** Program to run (default: node with the daemon's bin.js; a symlink path mimics the active link). */
  script?: string;
  env?: NodeJS.ProcessEnv;
}

export class FakeCourierfilter {
  readonly logLines: string[] = [];
  /** Resolves when the filter closes fd 3 (courierfilter's "ready"). */
  readonly ready: Promise<void>;
  /** Resolves with the exit code. */
  readonly exited: Promise<number | null>;
  /** Path of the ready FIFO (what a child that inherited fd 3 would show in /proc/PID/fd/3). */
  readonly readyFifo: string;
  private readonly child: ChildProcess;
  private stdinWriteFd: number | undefined;

  constructor(options: FakeCourierfilterOptions) {
    this.readyFifo = join(options.dir, 'ready.fifo');
    const [stdinRead, stdinWrite] = fifo(join(options.dir, 'stdin.fifo'));
    const [readyRead, readyWrite] = fifo(this.readyFifo);
    this.child = spawn(process.execPath, [options.script ?? daemonBin, ...options.args], {
      stdio: [stdinRead, 'pipe', 'pipe', readyWrite],
      env: options.env ?? { PATH: process.env.PATH },
    });
    // The filter holds its own copies now; the parent keeps only the ends courierfilter keeps.
    closeSync(stdinRead);
    closeSync(readyWrite);
    this.stdinWriteFd = stdinWrite;
    const readyStream = new Socket({ fd: readyRead, readable: true, writable: false });
    this.ready = new Promise((resolve) => {
      readyStream.on('data', () => undefined);
      readyStream.once('end', () => {
        readyStream.destroy();
        resolve();
      });
    });
    const collect = (chunk: Buffer) => this.logLines.push(...chunk.toString().split('\n').filter(Boolean));
    this.child.stdout!.on('data', collect);
    this.child.stderr!.on('data', collect);
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => resolve(code)));
  }

  /** Log records (JSON lines) the filter wrote. */
  get records(): Array<Record<string, unknown>> {
    return this.logLines.flatMap((line) => {
      try {
        return [JSON.parse(line) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
  }

  /** courierfilter's stop signal: close the filter's stdin. */
  closeStdin(): void {
    if (this.stdinWriteFd !== undefined) closeSync(this.stdinWriteFd);
    this.stdinWriteFd = undefined;
  }

  /** Closes stdin and waits for the exit code. */
  async stop(): Promise<number | null> {
    this.closeStdin();
    return this.exited;
  }

  /** Sends a signal to the filter. */
  signal(name: NodeJS.Signals): void {
    this.child.kill(name);
  }

  /** Kills the filter (cleanup after a failed test). */
  kill(): void {
    this.closeStdin();
    this.child.kill('SIGKILL');
  }
}

/** What Courier's submit does: send the request bytes, read everything until the filter closes. */
export function sendRequest(socketPath: string, request: string | Buffer, options: { halfClose?: boolean } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ path: socketPath, allowHalfOpen: true });
    const chunks: Buffer[] = [];
    socket.on('connect', () => (options.halfClose ? socket.end(request) : socket.write(request)));
    socket.on('data', (chunk) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('end', () => socket.end());
    socket.on('close', () => resolve(Buffer.concat(chunks).toString()));
  });
}

/** The request for one message: data path, control paths, empty line. */
export function requestFor(dataPath: string, ...controlPaths: string[]): string {
  return [dataPath, ...controlPaths].join('\n') + '\n\n';
}
