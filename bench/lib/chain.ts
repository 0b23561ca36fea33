/**
 * The filter-chain section: what the filter API costs per message over the protocol core. Three
 * milters under the same load (the no-op job's messages, unix socket), measured cell by cell with
 * the peers alternating:
 * - core: the protocol-core no-op milter of the main tables (bench/milters/milterkit.ts);
 * - empty: the filter API's milter front-end with an empty chain;
 * - bundled: the front-end with every bundled filter, each doing its work on every message.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { warmUp, type Amount, type Check } from './loadgen.js';
import { bestRun, measureCell, type CellMetrics } from './measure.js';
import type { Options } from './options.js';
import { MILTERKIT_SCRIPT, startPeer, type RunningPeer } from './peers.js';
import { BENCH_DIR, REPO_ROOT } from './setup.js';

export const CHAIN_PEERS = ['core', 'empty', 'bundled'] as const;
export type ChainPeer = (typeof CHAIN_PEERS)[number];

const SCRIPT = join(REPO_ROOT, 'dist', 'bench', 'milters', 'milterkit-chain.js');
const CHAINS_DIR = join(BENCH_DIR, 'milters', 'chains');
/** What add_header adds in bench/milters/chains/bundled.yaml; `{me}` is the load generator's `j` macro. */
const BUNDLED_HEADER = 'X-Bench-Chain:filtered on mx.bench.test';

export interface ChainMeasurement extends CellMetrics {
  peer: ChainPeer;
  /** CPU µs per message of every run of the cell (the fastest run's figures are the others). */
  cpuUsPerMsgRuns: number[];
}

export interface ChainReport {
  measurements: ChainMeasurement[];
  skipped: string[];
}

interface ChainPeerSpec {
  peer: ChainPeer;
  args: string[];
  check: Check;
}

function peerSpecs(nodeFlags: string[], socketOf: (peer: ChainPeer) => string): ChainPeerSpec[] {
  return [
    { peer: 'core', args: [...nodeFlags, MILTERKIT_SCRIPT, 'noop', socketOf('core')], check: 'noop' },
    { peer: 'empty', args: [...nodeFlags, SCRIPT, join(CHAINS_DIR, 'empty.yaml'), socketOf('empty')], check: 'noop' },
    { peer: 'bundled', args: [...nodeFlags, SCRIPT, join(CHAINS_DIR, 'bundled.yaml'), socketOf('bundled')], check: { expectHeader: BUNDLED_HEADER } },
  ];
}

/** Starts the three milters, warms each up, measures every cell peer after peer, stops them. */
export async function runChainSection(
  options: Options,
  nodeFlags: string[],
  context: { loadgen: string; workDir: string; log: (line: string) => void },
): Promise<ChainReport> {
  if (!existsSync(SCRIPT)) throw new Error('not built: dist/bench/milters/milterkit-chain.js is missing (run tsc)');
  const report: ChainReport = { measurements: [], skipped: [] };
  const amount: Amount = options.messages ? { messages: options.messages } : { seconds: options.duration };
  const socketOf = (peer: ChainPeer): string => `unix:${join(context.workDir, `chain-${peer}.sock`)}`;
  const started: Array<{ spec: ChainPeerSpec; milter: RunningPeer<string> }> = [];
  try {
    for (const spec of peerSpecs(nodeFlags, socketOf)) {
      try {
        const milter = await startPeer(`chain-${spec.peer}`, { command: process.execPath, args: spec.args }, spec.check, socketOf(spec.peer), context.loadgen, context.workDir);
        started.push({ spec, milter });
        await warmUp(context.loadgen, socketOf(spec.peer), spec.check, options.sectionCells, options.warmup);
      } catch (error) {
        report.skipped.push(`${spec.peer}: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
    for (const cell of options.sectionCells) {
      const runs = new Map<ChainPeer, CellMetrics[]>(started.map(({ spec }) => [spec.peer, []]));
      for (let run = 0; run < options.repeat; run++) {
        for (const { spec, milter } of started) {
          const metrics = await measureCell(milter, spec.check, cell, amount, context.loadgen);
          runs.get(spec.peer)!.push(metrics);
          context.log(`chain ${spec.peer} ${cell.perMessage ? 'new conn per msg ' : ''}${cell.conns} conns ${cell.bodyBytes} B: ${Math.round(metrics.msgsPerSec)} msg/s, ${metrics.cpuUsPerMsg.toFixed(0)} µs CPU/msg`);
        }
      }
      for (const [peer, peerRuns] of runs) {
        const best = bestRun(peerRuns);
        if (best) report.measurements.push({ ...best, peer, cpuUsPerMsgRuns: peerRuns.map((m) => m.cpuUsPerMsg) });
      }
    }
  } finally {
    await Promise.all(started.map(({ milter }) => milter.stop()));
  }
  return report;
}
