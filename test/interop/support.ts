/** Programs nobody here wrote, started and stopped by the interop tests. */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { promises as fs } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

/** Absolute path of a program on PATH (or the sbin directories), or a clear failure: the tests never skip. */
export function requireProgram(name: string): string {
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/sbin'];
  for (const dir of dirs) {
    const candidate = path.join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  throw new Error(`${name} is not installed: run scripts/prerequisites/10-interop.sh (Debian packages opendkim, opendkim-tools, miltertest)`);
}

/** A private temporary directory, removed by the returned function. */
export async function tempDir(prefix: string): Promise<{ dir: string; remove(): Promise<void> }> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
  return { dir, remove: () => fs.rm(dir, { recursive: true, force: true }) };
}

/** Runs a program to completion. */
export function runProgram(file: string, args: string[], options: { cwd?: string } = {}): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { encoding: 'utf8', cwd: options.cwd }, (error, stdout, stderr) => {
      const status = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
      resolve({ status, stdout, stderr });
    });
  });
}

/** A daemon run in the foreground by a test. */
export class Daemon {
  private readonly child: ChildProcess;
  private output = '';
  private exited: Promise<number | null>;

  constructor(file: string, args: string[]) {
    this.child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout!.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    this.child.stderr!.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => resolve(code)));
  }

  /** Waits until the unix socket accepts connections (or the daemon dies). */
  async waitForSocket(socketPath: string, attempts = 100): Promise<void> {
    let running = true;
    void this.exited.then(() => (running = false));
    for (let i = 0; i < attempts && running; i++) {
      const ok = await new Promise<boolean>((resolve) => {
        const socket = net.createConnection({ path: socketPath });
        socket.once('connect', () => {
          socket.destroy();
          resolve(true);
        });
        socket.once('error', () => resolve(false));
      });
      if (ok) return;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await this.stop();
    throw new Error(`daemon did not open ${socketPath}; its output:\n${this.output}`);
  }

  /** Stops it: SIGTERM, then SIGKILL if it lingers. */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await this.exited;
    clearTimeout(timer);
  }
}
