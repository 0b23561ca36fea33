/** Running the MTAs' command-line tools. */
import { execFile } from 'node:child_process';

/** Outcome of a finished command. */
export interface CommandResult<Output extends string | Buffer = string> {
  code: number;
  stdout: Output;
  stderr: string;
}

function execute(file: string, args: readonly string[], timeoutMs: number): Promise<CommandResult<Buffer>> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024, encoding: 'buffer' }, (error, stdout, stderr) => {
      if (error && typeof error.code !== 'number') {
        reject(new Error(`${file} ${args.join(' ')}: ${error.message}`));
        return;
      }
      resolve({ code: error ? (error.code as number) : 0, stdout, stderr: stderr.toString('utf8') });
    });
  });
}

/** Runs a command to completion (bounded by `timeoutMs`); a non-zero exit is a result, not an error. */
export async function run(file: string, args: readonly string[], timeoutMs = 60_000): Promise<CommandResult> {
  const result = await execute(file, args, timeoutMs);
  return { ...result, stdout: result.stdout.toString('utf8') };
}

/** Runs a command and returns its output bytes unchanged; fails with its stderr unless it exits with 0. */
export async function runForBytes(file: string, args: readonly string[], timeoutMs = 60_000): Promise<Buffer> {
  const result = await execute(file, args, timeoutMs);
  if (result.code !== 0) throw new Error(`${file} ${args.join(' ')} exited with ${result.code}: ${result.stderr.trim()}`);
  return result.stdout;
}

/** Runs a command and returns its output; fails with its stderr unless it exits with 0. */
export async function runChecked(file: string, args: readonly string[], timeoutMs?: number): Promise<string> {
  return (await runForBytes(file, args, timeoutMs)).toString('utf8');
}

/** Whether a process exists (signal 0 probes without signalling). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
