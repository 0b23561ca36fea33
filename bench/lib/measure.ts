/**
 * One measurement: load from the generator against a running milter, with the milter's CPU time
 * and peak memory read from /proc around it.
 */
import { runLoad, type Amount, type Check } from './loadgen.js';
import type { Cell } from './options.js';
import { resetPeakRss, treeCpuTimes, treePeakRssKiB } from './procfs.js';

/** What one cell measured on one milter. */
export interface CellMetrics {
  cell: Cell;
  messages: number;
  msgsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  /** Slowest message: shows connections a milter starves, which message percentiles hide. */
  maxMs: number;
  /** Milter CPU (user + system, whole process tree) per message, in microseconds. */
  cpuUsPerMsg: number;
  /**
   * The part of {@link cpuUsPerMsg} spent in the kernel (system calls, wake-ups, the loopback
   * network): every peer makes the same calls per message, so the rest is what differs between them.
   * Absent in reports saved before it was measured.
   */
  systemUsPerMsg?: number;
  /** Peak RSS (VmHWM) of the milter's process tree during the cell, in MiB. */
  peakRssMiB: number;
  /** Cores the load generator kept busy on average (1 = one full core). */
  loadgenCores: number;
  /** Cores the milter kept busy on average. */
  milterCores: number;
  accepted: number;
  rejected: number;
  checkFailures: number;
  errors: number;
  /** First lines the load generator printed about failures. */
  problems: string;
}

/** Sends one cell of load to the milter whose process is `pid`. */
export async function measureCell(
  milter: { pid: number; socketSpec: string },
  check: Check,
  cell: Cell,
  amount: Amount,
  loadgen: string,
): Promise<CellMetrics> {
  resetPeakRss(milter.pid);
  const cpuBefore = treeCpuTimes(milter.pid);
  const result = await runLoad(loadgen, milter.socketSpec, check, cell, amount);
  const cpuAfter = treeCpuTimes(milter.pid);
  const cpuSeconds = cpuAfter.seconds - cpuBefore.seconds;
  const perMessage = (seconds: number): number => (seconds / Math.max(result.messages, 1)) * 1e6;
  return {
    cell,
    messages: result.messages,
    msgsPerSec: result.msgs_per_s,
    p50Ms: result.p50_ms,
    p99Ms: result.p99_ms,
    maxMs: result.max_ms,
    cpuUsPerMsg: perMessage(cpuSeconds),
    systemUsPerMsg: perMessage(cpuAfter.systemSeconds - cpuBefore.systemSeconds),
    peakRssMiB: treePeakRssKiB(milter.pid) / 1024,
    loadgenCores: result.loadgen_cpu_s / result.elapsed_s,
    milterCores: cpuSeconds / result.elapsed_s,
    accepted: result.accepted,
    rejected: result.rejected,
    checkFailures: result.check_failures,
    errors: result.errors,
    problems: result.stderr.split('\n').slice(0, 3).join(' '),
  };
}

/** What one round of a cell measured on one peer: kept beside the best round, so the spread shows. */
export interface RoundFigures {
  msgsPerSec: number;
  cpuUsPerMsg: number;
  systemUsPerMsg?: number;
  /** The load generator's CPU per message: it shares the cores with the milter. */
  loadgenUsPerMsg: number;
  coresBusy: number;
}

/** The load generator's CPU per message, in microseconds. */
export function loadgenUsPerMsg(m: CellMetrics): number {
  return (m.loadgenCores / Math.max(m.msgsPerSec, 1)) * 1e6;
}

/** Cores kept busy by the milter and the load generator together. */
export function coresBusy(m: CellMetrics): number {
  return m.milterCores + m.loadgenCores;
}

/** The figures of one round. */
export function roundFigures(m: CellMetrics): RoundFigures {
  return { msgsPerSec: m.msgsPerSec, cpuUsPerMsg: m.cpuUsPerMsg, systemUsPerMsg: m.systemUsPerMsg, loadgenUsPerMsg: loadgenUsPerMsg(m), coresBusy: coresBusy(m) };
}

/** The median of some figures (CPU per message of repeated runs). */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/**
 * Of several runs of one cell, the one to report: the fastest among those answered correctly.
 * Interference from other work on the machine only ever slows a run down.
 */
export function bestRun<T extends CellMetrics>(runs: T[]): T | undefined {
  const ranked = [...runs].sort((a, b) => Number(a.checkFailures + a.errors > 0) - Number(b.checkFailures + b.errors > 0) || b.msgsPerSec - a.msgsPerSec);
  return ranked[0];
}
