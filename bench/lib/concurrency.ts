/**
 * The concurrency-models section: what each of milterkit's models buys.
 * - A CPU-heavy filter (about 5 ms of regex work per message) served by the event loop, by the
 *   worker-thread pool, and by worker processes: filter code is the bottleneck.
 * - The no-op filter served by one process and by worker processes: protocol handling is the
 *   bottleneck.
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { calibrateRounds, sampleBody, scan } from '../milters/cpu-work.js';
import { warmUp, type Amount } from './loadgen.js';
import { bestRun, measureCell, type CellMetrics } from './measure.js';
import type { Cell, Options } from './options.js';
import { startPeer } from './peers.js';
import { REPO_ROOT } from './setup.js';

export const CPU_MODELS = ['loop', 'threads', 'processes'] as const;
/** loop: work on the event loop; threads: in the worker-thread pool; processes: in worker processes. */
export type CpuModel = (typeof CPU_MODELS)[number];

const SCRIPT = join(REPO_ROOT, 'dist', 'bench', 'milters', 'milterkit-cpu.js');
const TARGET_MS = 5;
const BODY_BYTES = 2048;
const CELLS: Cell[] = [
  { conns: 8, bodyBytes: BODY_BYTES, perMessage: false },
  { conns: 64, bodyBytes: BODY_BYTES, perMessage: false },
];
const IO_MODELS = ['loop', 'processes'] as const satisfies readonly CpuModel[];
const IO_CELLS: Cell[] = [
  { conns: 64, bodyBytes: BODY_BYTES, perMessage: false },
  { conns: 64, bodyBytes: 1 << 20, perMessage: false },
];

export interface ConcurrencyMeasurement extends CellMetrics {
  model: CpuModel;
  /** cpu: the CPU-heavy filter; noop: the no-op job of the main tables. */
  filter: 'cpu' | 'noop';
}

export interface ConcurrencyReport {
  /** Scan rounds per message, calibrated on this machine. */
  rounds: number;
  /** What those rounds took on the benchmark's own thread, in ms. */
  msPerMessage: number;
  /** Worker processes (and pool threads): one per core. */
  workers: number;
  measurements: ConcurrencyMeasurement[];
  skipped: string[];
}

/** The command that starts milterkit's no-op milter on `spec` with `workers` processes (0: one process). */
export type NoopCommand = (spec: string, workers: number) => { command: string; args: string[] };

/** Median time of a few scans with `rounds`, in ms. */
function timeScan(text: string, rounds: number): number {
  const times: number[] = [];
  for (let i = 0; i < 5; i++) {
    const started = process.hrtime.bigint();
    scan({ text, rounds });
    times.push(Number(process.hrtime.bigint() - started) / 1e6);
  }
  return times.sort((a, b) => a - b)[2]!;
}

/** Starts one milter, warms it up, measures the cells, stops it; failures become `skipped` lines. */
async function measureModel(
  name: string,
  launch: { command: string; args: string[] },
  cells: Cell[],
  record: (metrics: CellMetrics) => void,
  report: ConcurrencyReport,
  options: Options,
  context: { loadgen: string; workDir: string; log: (line: string) => void },
  spec: string,
): Promise<void> {
  let milter;
  try {
    milter = await startPeer(name, launch, 'noop', spec, context.loadgen, context.workDir);
  } catch (error) {
    report.skipped.push(`${name}: ${error instanceof Error ? error.message : String(error)}`);
    return;
  }
  const amount: Amount = options.messages ? { messages: options.messages } : { seconds: options.duration };
  try {
    await warmUp(context.loadgen, spec, 'noop', cells, options.warmup);
    for (const cell of cells) {
      const runs: CellMetrics[] = [];
      for (let run = 0; run < options.repeat; run++) runs.push(await measureCell(milter, 'noop', cell, amount, context.loadgen));
      const best = bestRun(runs)!;
      record(best);
      context.log(`concurrency ${name} ${cell.conns} conns ${cell.bodyBytes} B: ${Math.round(best.msgsPerSec)} msg/s, p50 ${best.p50Ms.toFixed(1)} ms, p99 ${best.p99Ms.toFixed(1)} ms`);
    }
  } finally {
    await milter.stop();
  }
}

/** Measures the CPU-heavy filter in each model, then the no-op filter in one and in several processes. */
export async function runConcurrency(
  options: Options,
  noopCommand: NoopCommand,
  context: { loadgen: string; workDir: string; log: (line: string) => void },
): Promise<ConcurrencyReport> {
  if (!existsSync(SCRIPT)) throw new Error('not built: dist/bench/milters/milterkit-cpu.js is missing (run tsc)');
  const text = sampleBody(BODY_BYTES);
  const rounds = calibrateRounds(text, TARGET_MS);
  const workers = availableParallelism();
  const report: ConcurrencyReport = { rounds, msPerMessage: timeScan(text, rounds), workers, measurements: [], skipped: [] };
  for (const model of CPU_MODELS) {
    const spec = `unix:${join(context.workDir, `cpu-${model}.sock`)}`;
    const launch = { command: process.execPath, args: [SCRIPT, model, spec, String(rounds)] };
    const record = (metrics: CellMetrics): void => void report.measurements.push({ ...metrics, model, filter: 'cpu' });
    await measureModel(`milterkit-cpu-${model}`, launch, CELLS, record, report, options, context, spec);
  }
  for (const model of IO_MODELS) {
    const spec = `unix:${join(context.workDir, `noop-${model}.sock`)}`;
    const launch = noopCommand(spec, model === 'processes' ? workers : 0);
    const record = (metrics: CellMetrics): void => void report.measurements.push({ ...metrics, model, filter: 'noop' });
    await measureModel(`milterkit-noop-${model}`, launch, IO_CELLS, record, report, options, context, spec);
  }
  return report;
}
