/**
 * The concurrency-models section: a CPU-heavy milterkit filter (about 5 ms of regex work per
 * message) served by the event loop, by the worker-thread pool, and by worker processes, to show
 * what each model buys when filter code, not I/O, is the bottleneck.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { calibrateRounds, sampleBody, scan } from '../milters/cpu-work.js';
import type { Amount } from './loadgen.js';
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

export interface ConcurrencyMeasurement extends CellMetrics {
  model: CpuModel;
}

export interface ConcurrencyReport {
  /** Scan rounds per message, calibrated on this machine. */
  rounds: number;
  /** What those rounds took on the benchmark's own thread, in ms. */
  msPerMessage: number;
  measurements: ConcurrencyMeasurement[];
  skipped: string[];
}

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

/** Measures each model at 8 and 64 connections over a unix socket. */
export async function runConcurrency(
  options: Options,
  context: { loadgen: string; workDir: string; log: (line: string) => void },
): Promise<ConcurrencyReport> {
  if (!existsSync(SCRIPT)) throw new Error('not built: dist/bench/milters/milterkit-cpu.js is missing (run tsc)');
  const text = sampleBody(BODY_BYTES);
  const rounds = calibrateRounds(text, TARGET_MS);
  const report: ConcurrencyReport = { rounds, msPerMessage: timeScan(text, rounds), measurements: [], skipped: [] };
  const amount: Amount = options.messages ? { messages: options.messages } : { seconds: options.duration };
  for (const model of CPU_MODELS) {
    const spec = `unix:${join(context.workDir, `cpu-${model}.sock`)}`;
    let milter;
    try {
      milter = await startPeer(`milterkit-${model}`, { command: process.execPath, args: [SCRIPT, model, spec, String(rounds)] }, 'noop', spec, context.loadgen, context.workDir);
    } catch (error) {
      report.skipped.push(`${model}: ${error instanceof Error ? error.message : String(error)}`);
      continue;
    }
    try {
      await measureCell(milter, 'noop', CELLS[0]!, { seconds: options.warmup }, context.loadgen);
      for (const cell of CELLS) {
        const runs: CellMetrics[] = [];
        for (let run = 0; run < options.repeat; run++) runs.push(await measureCell(milter, 'noop', cell, amount, context.loadgen));
        const best = bestRun(runs)!;
        report.measurements.push({ ...best, model });
        context.log(`concurrency ${model} ${cell.conns} conns: ${Math.round(best.msgsPerSec)} msg/s, p50 ${best.p50Ms.toFixed(1)} ms, p99 ${best.p99Ms.toFixed(1)} ms`);
      }
    } finally {
      await milter.stop();
    }
  }
  return report;
}
