/**
 * Runs the C load generator (bench/loadgen.c) and reads its JSON result.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Cell, Job } from './options.js';

/** What the load generator reports for one run of load. */
export interface LoadResult {
  messages: number;
  elapsed_s: number;
  msgs_per_s: number;
  p50_ms: number;
  p99_ms: number;
  max_ms: number;
  accepted: number;
  rejected: number;
  check_failures: number;
  errors: number;
  connections: number;
  loadgen_cpu_s: number;
  replies: Record<string, number>;
}

/** What the load generator reports after holding idle connections. */
export interface IdleResult {
  requested: number;
  established: number;
  open_at_end: number;
  dropped: number;
  errors: number;
  connect_s: number;
}

/**
 * What the load generator checks in every reply: a job's answers, or (the filter-chain peers)
 * that every message is accepted with exactly one added header `NAME:VALUE`.
 */
export type Check = Job | { expectHeader: string };

function checkArgs(check: Check): string[] {
  return typeof check === 'string' ? ['--check', check] : ['--expect-header', check.expectHeader];
}

/** How much load to send in one run. */
export type Amount = { seconds: number } | { messages: number };

function amountArgs(amount: Amount): string[] {
  return 'seconds' in amount ? ['--duration', String(amount.seconds)] : ['--messages', String(amount.messages)];
}

/** Runs the generator to completion and returns its stdout (last line JSON) and stderr. */
function runToEnd(loadgen: string, args: string[]): Promise<{ json: string; stderr: string; code: number | null }> {
  return new Promise((resolve, reject) => {
    const child = spawn(loadgen, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (text: string) => (stdout += text));
    child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
    child.on('error', reject);
    child.on('close', (code) => resolve({ json: stdout.trim().split('\n').pop() ?? '', stderr: stderr.trim(), code }));
  });
}

/**
 * Sends load to a milter. Replies are checked by the generator itself;
 * check failures and protocol errors come back as counts (with the first few on `stderr`).
 */
export async function runLoad(
  loadgen: string,
  socketSpec: string,
  check: Check,
  cell: Cell,
  amount: Amount,
): Promise<LoadResult & { stderr: string }> {
  const args = ['--socket', socketSpec, '--conns', String(cell.conns), '--body', String(cell.bodyBytes), ...checkArgs(check), ...amountArgs(amount)];
  if (cell.perMessage) args.push('--per-message');
  const { json, stderr, code } = await runToEnd(loadgen, args);
  if (!json.startsWith('{')) throw new Error(`load generator failed (exit ${code}): ${stderr || 'no output'}`);
  return { ...(JSON.parse(json) as LoadResult), stderr };
}

/**
 * Warm-up passes over the cells before anything is measured. A JIT-compiled peer reaches its
 * steady state only once every pattern of load has run, and once the connections of a run have
 * closed and the next run has re-optimised what their closing deoptimised (see
 * bench/instructions.sh): with a single load of one cell, milterkit's first round of a cell ran
 * 10–13 % under its median while the C peers' did not. Peers without a JIT lose nothing by it.
 */
export const WARMUP_PASSES = 2;

/** Sends warm-up load to a freshly started milter: every cell for `seconds`, {@link WARMUP_PASSES} times over. */
export async function warmUp(loadgen: string, socketSpec: string, check: Check, cells: readonly Cell[], seconds: number): Promise<void> {
  for (let pass = 0; pass < WARMUP_PASSES; pass++) {
    for (const cell of cells) await runLoad(loadgen, socketSpec, check, cell, { seconds });
  }
}

/**
 * Opens `count` connections that negotiate, send CONNECT and HELO, then idle. `whileIdle` runs
 * once all are established; the connections are closed after it resolves.
 */
export function runIdle<T>(loadgen: string, socketSpec: string, count: number, whileIdle: () => Promise<T>): Promise<{ idle: IdleResult; measured: T }> {
  return new Promise((resolve, reject) => {
    const child = spawn(loadgen, ['--socket', socketSpec, '--idle', String(count)], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    let measured: T | undefined;
    let measureError: unknown;
    let lastLine = '';
    child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
    child.on('error', reject);
    createInterface({ input: child.stdout }).on('line', (line) => {
      lastLine = line;
      if (!line.startsWith('READY')) return;
      whileIdle()
        .then((value) => (measured = value))
        .catch((error: unknown) => (measureError = error))
        .finally(() => child.stdin.end());
    });
    child.on('close', (code) => {
      if (measureError) return reject(measureError);
      if (!lastLine.startsWith('{') || measured === undefined) {
        return reject(new Error(`idle load generator failed (exit ${code}): ${stderr.trim() || 'no output'}`));
      }
      resolve({ idle: JSON.parse(lastLine) as IdleResult, measured });
    });
  });
}
