/**
 * courierfilter's "ready" pipe is fd 3: `courierfilter start` blocks until every filter has
 * closed it. It is not close-on-exec, so a child process that inherits it keeps courierfilter
 * waiting; the helpers here close it once and never let a child inherit it.
 *
 * @packageDocumentation
 */
import { spawn } from 'node:child_process';
import { closeSync, fstatSync } from 'node:fs';

/** The file descriptor courierfilter passes as the ready signal. */
export const READY_FD = 3;

/**
 * True when fd 3 looks like courierfilter's ready pipe (a pipe or a socket). When nothing was
 * inherited on fd 3, Node's own event loop usually sits there (an anonymous inode), which must
 * never be closed.
 */
export function hasReadyFd(): boolean {
  try {
    const stat = fstatSync(READY_FD);
    return stat.isFIFO() || stat.isSocket();
  } catch {
    return false;
  }
}

/**
 * Closes fd 3 if it is the ready pipe; returns whether it did. Call it once, early: after the
 * first call fd 3 may be reused by something else.
 */
export function closeReadyFd(): boolean {
  if (!hasReadyFd()) return false;
  try {
    closeSync(READY_FD);
    return true;
  } catch {
    return false;
  }
}

/** Output of a finished child. */
export interface ChildOutput {
  readonly exitCode: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs a short command and collects its output, with fd 3 of the child replaced by a fresh pipe
 * so that it cannot hold courierfilter's ready pipe open. Output and run time are bounded.
 */
export function spawnWithoutReadyFd(
  command: string,
  args: readonly string[],
  options: { timeoutMs: number; maxOutputBytes?: number },
): Promise<ChildOutput> {
  const maxOutput = options.maxOutputBytes ?? 1024 * 1024;
  return new Promise((resolve, reject) => {
    // stdio[3] = 'pipe' makes libuv dup2 a new pipe onto the child's fd 3; 'ignore' would leave
    // the inherited descriptor in place.
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe', 'pipe'], timeout: options.timeoutMs });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let size = 0;
    const collect = (into: Buffer[]) => (chunk: Buffer) => {
      size += chunk.length;
      if (size <= maxOutput) into.push(chunk);
      else child.kill('SIGKILL');
    };
    child.stdout!.on('data', collect(out));
    child.stderr!.on('data', collect(err));
    child.stdio[3]?.on('error', () => undefined);
    child.on('error', reject);
    child.on('close', (exitCode) =>
      resolve({ exitCode, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') }),
    );
  });
}
