/**
 * The benchmark's results and their markdown rendering.
 */
import { CHAIN_PEERS, type ChainMeasurement, type ChainPeer, type ChainReport } from './chain.js';
import type { CourierReport } from './courier.js';
import { courierSection } from './courier-report.js';
import { CPU_MODELS, type ConcurrencyMeasurement, type ConcurrencyReport } from './concurrency.js';
import { coresBusy, loadgenUsPerMsg, median, type CellMetrics, type RoundFigures } from './measure.js';
import { bodyTag, type Cell, type Job, type PeerName, type Transport } from './options.js';

/** One peer measured in one cell. */
export interface Measurement extends CellMetrics {
  peer: PeerName;
  job: Job;
  transport: Transport;
  /** Every round of the cell, in order (the peers alternate within a round); absent in older reports. */
  rounds?: RoundFigures[];
}

/** The idle-connections test. */
export interface IdleMeasurement {
  peer: PeerName;
  requested: number;
  established: number;
  openAtEnd: number;
  rssBeforeMiB: number;
  rssIdleMiB: number;
  kibPerConnection: number;
}

export interface Report {
  startedAt: string;
  machine: string;
  settings: string;
  peers: PeerName[];
  measurements: Measurement[];
  skipped: string[];
  idle: IdleMeasurement | undefined;
  idleSkipped: string | undefined;
  concurrency: ConcurrencyReport | undefined;
  concurrencySkipped: string | undefined;
  /** Absent in reports written before the section existed. */
  chain?: ChainReport | undefined;
  chainSkipped?: string | undefined;
  courier?: CourierReport | undefined;
  courierSkipped?: string | undefined;
}

const JOB_TITLES: Record<Job, string> = {
  noop: 'no-op job (continue everything)',
  work: 'work job (add `X-Bench: <body bytes>` at end of message, reject Subject REJECTME)',
};
const TRANSPORT_TITLES: Record<Transport, string> = { unix: 'unix socket', tcp: 'TCP 127.0.0.1' };
/** Above this p50, a TCP run is waiting on Nagle plus delayed ACK (about 40 ms per message). */
const STALL_MS = 20;

export function cellLabel(cell: Cell): { conns: string; body: string } {
  const size = bodyTag(cell.bodyBytes).replace('k', ' KiB').replace('m', ' MiB');
  return { conns: cell.perMessage ? `${cell.conns} (new conn per msg)` : String(cell.conns), body: size };
}

function sameCell(a: Cell, b: Cell): boolean {
  return a.conns === b.conns && a.bodyBytes === b.bodyBytes && a.perMessage === b.perMessage;
}

function rate(value: number): string {
  return Math.round(value).toLocaleString('en-US');
}

function fixed(value: number, digits: number): string {
  return value.toFixed(digits);
}

function ratio(ours: number | undefined, theirs: number | undefined): string {
  if (ours === undefined || theirs === undefined || theirs === 0) return '–';
  return `${(ours / theirs).toFixed(2)}×`;
}

/** Marks a measurement whose replies were wrong, so a fast but broken peer cannot look good. */
function flagged(m: CellMetrics | undefined, text: string): string {
  if (!m) return '–';
  return m.checkFailures > 0 || m.errors > 0 ? `${text} ⚠` : text;
}

function find(report: Report, peer: PeerName, job: Job, transport: Transport, cell: Cell): Measurement | undefined {
  return report.measurements.find((m) => m.peer === peer && m.job === job && m.transport === transport && sameCell(m.cell, cell));
}

function cellsOf(report: Report, job: Job, transport: Transport): Cell[] {
  const cells: Cell[] = [];
  for (const m of report.measurements) {
    if (m.job === job && m.transport === transport && !cells.some((c) => sameCell(c, m.cell))) cells.push(m.cell);
  }
  return cells;
}

function sectionTable(report: Report, job: Job, transport: Transport): string[] {
  const peers = report.peers;
  const others = peers.filter((p) => p !== 'milterkit');
  const triple = (values: (string | undefined)[]): string => values.map((v) => v ?? '–').join(' / ');
  const header = [
    'conns',
    'body',
    ...peers.map((p) => `${p} msg/s`),
    ...(peers.includes('milterkit') ? others.map((p) => `milterkit ÷ ${p}`) : []),
    'p50 ms',
    'p99 ms',
    'max ms',
    // The kernel's part in brackets: the system calls per message are the same for every peer.
    'CPU µs/msg (in kernel)',
    // The load generator shares the machine: with every core busy, msg/s follows the CPU per message
    // of the milter and of the load generator together, so both are shown.
    'load gen CPU µs/msg',
    'cores busy',
    'peak RSS MiB',
  ];
  const lines = [`| ${header.join(' | ')} |`, `|${header.map((_, i) => (i < 2 ? '---' : '---:')).join('|')}|`];
  for (const cell of cellsOf(report, job, transport)) {
    const row = peers.map((p) => find(report, p, job, transport, cell));
    const mk = find(report, 'milterkit', job, transport, cell);
    const label = cellLabel(cell);
    lines.push(
      `| ${[
        label.conns,
        label.body,
        ...row.map((m) => flagged(m, m ? rate(m.msgsPerSec) : '–')),
        ...(peers.includes('milterkit') ? others.map((p) => ratio(mk?.msgsPerSec, find(report, p, job, transport, cell)?.msgsPerSec)) : []),
        triple(row.map((m) => m && fixed(m.p50Ms, 2))),
        triple(row.map((m) => m && fixed(m.p99Ms, 2))),
        triple(row.map((m) => m && fixed(m.maxMs, 0))),
        triple(row.map((m) => m && cpuText(m))),
        triple(row.map((m) => m && fixed(loadgenUsPerMsg(m), 0))),
        triple(row.map((m) => m && fixed(coresBusy(m), 2))),
        triple(row.map((m) => m && fixed(m.peakRssMiB, 1))),
      ].join(' | ')} |`,
    );
  }
  return lines;
}

/** A milter's CPU per message, with the kernel's part in brackets where it was measured. */
function cpuText(m: { cpuUsPerMsg: number; systemUsPerMsg?: number }): string {
  return m.systemUsPerMsg === undefined ? fixed(m.cpuUsPerMsg, 0) : `${fixed(m.cpuUsPerMsg, 0)} (${fixed(m.systemUsPerMsg, 0)})`;
}

/** The project's speed target for a cell, as a msg/s ratio to libmilter; none for the cells it sets none for. */
function roundTarget(cell: Cell): number | undefined {
  if (cell.perMessage || cell.bodyBytes >= 1 << 20) return 1;
  if (cell.bodyBytes === 2048 && (cell.conns === 8 || cell.conns === 64)) return 1.5;
  return undefined;
}

function spread(values: number[], digits: number, unit = ''): string {
  return `${fixed(Math.min(...values), digits)}–${fixed(Math.max(...values), digits)}${unit}`;
}

/**
 * milterkit against each other peer round by round (round i of one against round i of the other,
 * run back to back): the spread the README quotes, beside the CPU ratios that explain it.
 */
function roundsSection(report: Report): string[] {
  const others = report.peers.filter((p) => p !== 'milterkit');
  const rows: string[] = [];
  for (const mk of report.measurements) {
    if (mk.peer !== 'milterkit' || mk.rounds === undefined || mk.rounds.length < 2) continue;
    for (const peer of others) {
      const theirs = find(report, peer, mk.job, mk.transport, mk.cell)?.rounds;
      if (theirs === undefined || theirs.length !== mk.rounds.length) continue;
      const pairs = mk.rounds.map((ours, i) => [ours, theirs[i]!] as const);
      const speed = pairs.map(([a, b]) => a.msgsPerSec / Math.max(b.msgsPerSec, 1));
      const cpu = pairs.map(([a, b]) => a.cpuUsPerMsg / Math.max(b.cpuUsPerMsg, 1));
      const machine = pairs.map(([a, b]) => (b.cpuUsPerMsg + b.loadgenUsPerMsg) / Math.max(a.cpuUsPerMsg + a.loadgenUsPerMsg, 1));
      const cores = pairs.flatMap(([a, b]) => [a.coresBusy, b.coresBusy]);
      const kernel = pairs.every(([a, b]) => a.systemUsPerMsg !== undefined && b.systemUsPerMsg !== undefined)
        ? `${spread(pairs.map(([a]) => a.systemUsPerMsg!), 0)} / ${spread(pairs.map(([, b]) => b.systemUsPerMsg!), 0)}`
        : '–';
      const target = peer === 'libmilter' ? roundTarget(mk.cell) : undefined;
      const label = cellLabel(mk.cell);
      rows.push(
        `| ${mk.job}, ${mk.transport} | ${label.conns} | ${label.body} | ${peer} | ${spread(speed, 2, '×')} | ${spread(cpu, 2, '×')} | ` +
          `${spread(machine, 2, '×')} | ${kernel} | ${spread(cores, 2)} | ${target === undefined ? '–' : `≥ ${target}×: ${speed.filter((r) => r >= target).length} of ${speed.length}`} |`,
      );
    }
  }
  if (rows.length === 0) return [];
  return [
    '### Round by round',
    '',
    'milterkit against each peer, round i against round i (run back to back). msg/s: the ratio of messages per second; CPU: of ' +
      "the milters' CPU per message (below 1: milterkit needs less); machine CPU: (theirs + load generator) ÷ (milterkit's + load " +
      'generator) per message, which msg/s follows while the cores are full; kernel: the CPU per message each milter spent in the ' +
      "kernel, milterkit's / theirs; cores busy: milter and load generator together, every round of both peers.",
    '',
    '| job, transport | conns | body | against | msg/s | CPU | machine CPU | kernel µs/msg | cores busy | rounds at target |',
    '|---|---|---|---|---|---|---|---|---|---|',
    ...rows,
    '',
  ];
}

interface TargetCheck {
  target: string;
  measured: string;
  met: boolean;
}

/** The speed targets of the project (issue 5), checked on the no-op job over the unix socket. */
function targetChecks(report: Report): TargetCheck[] {
  const checks: TargetCheck[] = [];
  const get = (peer: PeerName, conns: number, bodyBytes: number, job: Job = 'noop', transport: Transport = 'unix') =>
    find(report, peer, job, transport, { conns, bodyBytes, perMessage: false });
  const speedCells: Array<[number, number]> = [[8, 2048], [64, 2048], [1, 1 << 20], [8, 1 << 20], [64, 1 << 20]];
  for (const [conns, bodyBytes] of speedCells) {
    const mk = get('milterkit', conns, bodyBytes);
    const lm = get('libmilter', conns, bodyBytes);
    const target = roundTarget({ conns, bodyBytes, perMessage: false });
    if (mk && lm && target !== undefined) {
      const r = mk.msgsPerSec / lm.msgsPerSec;
      const label = `${conns} conn${conns === 1 ? '' : 's'}, ${bodyTag(bodyBytes).replace('k', ' KiB').replace('m', ' MiB')}`;
      checks.push({ target: `${target === 1 ? '≥' : `≥ ${target}×`} libmilter msg/s, ${label}`, measured: `${r.toFixed(2)}×`, met: r >= target });
    }
  }
  for (const bodyBytes of [2048, 1 << 20]) {
    const mk = get('milterkit', 64, bodyBytes);
    const lm = get('libmilter', 64, bodyBytes);
    if (mk && lm) {
      checks.push({
        target: `p99 ≤ libmilter's, 64 conns, ${bodyTag(bodyBytes).replace('k', ' KiB').replace('m', ' MiB')}`,
        measured: `${mk.p99Ms.toFixed(2)} ms vs ${lm.p99Ms.toFixed(2)} ms`,
        met: mk.p99Ms <= lm.p99Ms,
      });
    }
  }
  const nagle = get('milterkit', 1, 2048, 'work', 'tcp');
  if (nagle) {
    checks.push({ target: 'no Nagle stall: work job, TCP, 1 conn', measured: `p50 ${nagle.p50Ms.toFixed(2)} ms`, met: nagle.p50Ms < STALL_MS });
  }
  return checks;
}

function nagleTable(report: Report): string[] {
  const cell: Cell = { conns: 1, bodyBytes: 2048, perMessage: false };
  const rows = report.peers
    .map((peer) => find(report, peer, 'work', 'tcp', cell))
    .filter((m): m is Measurement => m !== undefined);
  if (rows.length === 0) return [];
  return [
    '### Nagle check: work job over TCP, 1 connection, 2 KiB',
    '',
    'A milter that writes its header change and its final reply as separate small packets waits for the',
    "MTA's delayed ACK (about 40 ms) on every message.",
    '',
    '| milter | msg/s | p50 ms | p99 ms | result |',
    '|---|---:|---:|---:|---|',
    ...rows.map(
      (m) => `| ${m.peer} | ${rate(m.msgsPerSec)} | ${fixed(m.p50Ms, 2)} | ${fixed(m.p99Ms, 2)} | ${m.p50Ms < STALL_MS ? 'no stall' : 'stalls'} |`,
    ),
    '',
  ];
}

function problems(report: Report): string[] {
  const isBad = (m: CellMetrics): boolean => m.checkFailures > 0 || m.errors > 0;
  const bad = [
    ...report.measurements.filter(isBad).map((m) => ({ m, what: `${m.peer}, ${m.job}, ${m.transport}` })),
    ...(report.concurrency?.measurements ?? []).filter(isBad).map((m) => ({ m, what: `milterkit ${MODEL_TITLES[m.model]}, CPU-heavy filter` })),
    ...(report.chain?.measurements ?? []).filter(isBad).map((m) => ({ m, what: `milterkit ${CHAIN_TITLES[m.peer]}, unix` })),
  ];
  if (bad.length === 0 && report.skipped.length === 0) return [];
  const lines = ['### Problems', ''];
  for (const { m, what } of bad) {
    const label = cellLabel(m.cell);
    lines.push(`- ⚠ ${what}, conns ${label.conns}, ${label.body}: ${m.checkFailures} wrong replies, ${m.errors} protocol errors. ${m.problems}`);
  }
  for (const skip of report.skipped) lines.push(`- not measured: ${skip}`);
  lines.push('');
  return lines;
}

function idleSection(report: Report): string[] {
  if (report.idleSkipped) return ['### Idle connections', '', `Not measured: ${report.idleSkipped}`, ''];
  const idle = report.idle;
  if (!idle) return [];
  return [
    '### Idle connections',
    '',
    `${idle.peer}, no-op job, unix socket: ${idle.established.toLocaleString('en-US')} of ${idle.requested.toLocaleString('en-US')} connections ` +
      `negotiated, sent CONNECT and HELO and then idled; ${idle.openAtEnd.toLocaleString('en-US')} were still open at the end. ` +
      `RSS ${fixed(idle.rssBeforeMiB, 1)} MiB before, ${fixed(idle.rssIdleMiB, 1)} MiB with them open: ` +
      `**${fixed(idle.kibPerConnection, 1)} KiB per idle connection**.`,
    '',
  ];
}

const MODEL_TITLES = {
  loop: 'event loop (default)',
  threads: 'worker-thread pool',
  processes: 'worker processes',
} as const;
const IO_MODEL_ORDER = ['loop', 'processes'] as const;

function concurrencySection(report: Report): string[] {
  if (report.concurrencySkipped) return ['### Concurrency models', '', `Not measured: ${report.concurrencySkipped}`, ''];
  const c = report.concurrency;
  if (!c) return [];
  const row = (m: ConcurrencyMeasurement, base: ConcurrencyMeasurement | undefined, extra: string[]): string =>
    `| ${MODEL_TITLES[m.model]} | ${cellLabel(m.cell).conns} | ${cellLabel(m.cell).body} | ${flagged(m, rate(m.msgsPerSec))} | ` +
    `${ratio(m.msgsPerSec, base?.msgsPerSec)} | ${extra.map((e) => `${e} | `).join('')}${fixed(m.p50Ms, 1)} | ${fixed(m.p99Ms, 1)} | ` +
    `${fixed(m.maxMs, 0)} | ${fixed(m.cpuUsPerMsg, 0)} | ${fixed(m.peakRssMiB, 1)} |`;
  const loopOf = (m: ConcurrencyMeasurement) => (x: ConcurrencyMeasurement) =>
    x.filter === m.filter && x.model === 'loop' && sameCell(x.cell, m.cell);
  const cpu = c.measurements.filter((m) => m.filter !== 'noop');
  const noop = c.measurements.filter((m) => m.filter === 'noop');
  const lines = [
    `### Concurrency models (worker threads and processes: ${c.workers}, one per core)`,
    '',
    `**CPU-heavy filter**: at end of message it scans the body with a regular expression ${c.rounds} times ` +
      `(${fixed(c.msPerMessage, 1)} ms on one core of this machine, so about ${rate(1000 / c.msPerMessage)} msg/s per core; ` +
      'the load generator shares the cores). Unix socket.',
    '',
    '| model | conns | body | msg/s | ÷ event loop | p50 ms | p99 ms | max ms | CPU µs/msg | peak RSS MiB |',
    '|---|---:|---|---:|---:|---:|---:|---:|---:|---:|',
    ...CPU_MODELS.flatMap((model) => cpu.filter((m) => m.model === model).map((m) => row(m, cpu.find(loopOf(m)), []))),
    '',
  ];
  if (noop.length > 0) {
    const others = report.peers.filter((p) => p !== 'milterkit');
    lines.push(
      '**No-op filter** (the no-op job of the tables above) in one process or in worker processes sharing the socket. Unix socket.',
      '',
      `| model | conns | body | msg/s | ÷ event loop | ${others.map((p) => `÷ ${p}`).join(' | ')} | p50 ms | p99 ms | max ms | CPU µs/msg | peak RSS MiB |`,
      `|---|---:|---|---:|---:|${others.map(() => '---:|').join('')}---:|---:|---:|---:|---:|`,
      ...IO_MODEL_ORDER.flatMap((model) =>
        noop
          .filter((m) => m.model === model)
          .map((m) => row(m, noop.find(loopOf(m)), others.map((p) => ratio(m.msgsPerSec, find(report, p, 'noop', 'unix', m.cell)?.msgsPerSec)))),
      ),
      '',
    );
  }
  for (const skip of c.skipped) lines.push(`Not measured: ${skip}`, '');
  return lines;
}

const CHAIN_TITLES: Record<ChainPeer, string> = { core: 'protocol core', empty: 'empty chain', bundled: 'bundled chain' };

/** CPU per message of a chain peer: the median of its runs, with their range when there are several. */
function chainCpu(m: ChainMeasurement): string {
  const runs = m.cpuUsPerMsgRuns;
  return runs.length > 1 ? `${fixed(median(runs), 0)} (${fixed(Math.min(...runs), 0)}–${fixed(Math.max(...runs), 0)})` : fixed(m.cpuUsPerMsg, 0);
}

function chainSection(report: Report): string[] {
  if (report.chainSkipped) return ['### Filter chain', '', `Not measured: ${report.chainSkipped}`, ''];
  const c = report.chain;
  if (!c) return [];
  const cells: Cell[] = [];
  for (const m of c.measurements) if (!cells.some((x) => sameCell(x, m.cell))) cells.push(m.cell);
  const lines = [
    '### Filter chain: the filter API over the protocol core',
    '',
    "The no-op job's load over the unix socket against three milterkit milters: the protocol core (the no-op milter of the main " +
      "tables), the filter API's milter front-end with an **empty chain** (`bench/milters/chains/empty.yaml`), and with a **bundled chain** " +
      '(`bundled.yaml`: whitelist_auth, whitelist_relayclients, noduplicates, deliveredto, attachments, add_header, each doing its work on every ' +
      'message; the load generator checks that every message is accepted with exactly the header add_header adds). CPU µs/msg: the median of the ' +
      "runs (their range); cost: the median CPU per message above the protocol core's.",
    '',
    '| conns | body | peer | msg/s | p50 ms | p99 ms | CPU µs/msg | cost over core µs/msg | peak RSS MiB |',
    '|---|---|---|---:|---:|---:|---:|---:|---:|',
  ];
  for (const cell of cells) {
    const label = cellLabel(cell);
    const of = (peer: ChainPeer) => c.measurements.find((m) => m.peer === peer && sameCell(m.cell, cell));
    const core = of('core');
    for (const peer of CHAIN_PEERS) {
      const m = of(peer);
      if (!m) continue;
      const cost = peer === 'core' || !core ? '–' : fixed(median(m.cpuUsPerMsgRuns) - median(core.cpuUsPerMsgRuns), 0);
      lines.push(
        `| ${label.conns} | ${label.body} | ${CHAIN_TITLES[peer]} | ${flagged(m, rate(m.msgsPerSec))} | ${fixed(m.p50Ms, 2)} | ${fixed(m.p99Ms, 2)} | ` +
          `${chainCpu(m)} | ${cost} | ${fixed(m.peakRssMiB, 1)} |`,
      );
    }
  }
  lines.push('');
  for (const skip of c.skipped) lines.push(`Not measured: ${skip}`, '');
  return lines;
}

const PEER_TITLES: Record<PeerName, string> = {
  milterkit: 'milterkit',
  libmilter: 'C libmilter (Debian libmilter-dev)',
  pymilter: 'pymilter (Debian python3-milter)',
  'c-epoll': 'minimal C epoll milter (the harness ceiling)',
};

/**
 * The headline figures in one small table (the one README shows): no-op job over the unix socket,
 * plus the Nagle check.
 */
export function renderSummary(report: Report): string {
  const cell = (conns: number, bodyBytes: number): Cell => ({ conns, bodyBytes, perMessage: false });
  const columns: { title: string; value: (peer: PeerName) => string }[] = [
    { title: '8 conns, 2 KiB', value: (p) => msgRate(find(report, p, 'noop', 'unix', cell(8, 2048))) },
    {
      title: '64 conns, 2 KiB',
      value: (p) => {
        const m = find(report, p, 'noop', 'unix', cell(64, 2048));
        return m ? `${msgRate(m)}, p99 ${fixed(m.p99Ms, 1)} ms` : '–';
      },
    },
    { title: '8 conns, 1 MiB', value: (p) => msgRate(find(report, p, 'noop', 'unix', cell(8, 1 << 20))) },
    { title: '64 conns, 1 MiB', value: (p) => msgRate(find(report, p, 'noop', 'unix', cell(64, 1 << 20))) },
    {
      title: 'CPU per msg, 8 conns, 2 KiB',
      value: (p) => {
        const m = find(report, p, 'noop', 'unix', cell(8, 2048));
        return m ? `${fixed(m.cpuUsPerMsg, 0)} µs` : '–';
      },
    },
    { title: 'work job, TCP, 1 conn (Nagle check)', value: (p) => msgRate(find(report, p, 'work', 'tcp', cell(1, 2048))) },
  ];
  const lines = [
    `| milter, unix socket, no-op job | ${columns.map((c) => c.title).join(' | ')} |`,
    `|---|${columns.map(() => '---:').join('|')}|`,
    ...report.peers.map((peer) => `| ${PEER_TITLES[peer]} | ${columns.map((c) => c.value(peer)).join(' | ')} |`),
  ];
  return lines.join('\n');
}

function msgRate(m: Measurement | undefined): string {
  return m ? flagged(m, `${rate(m.msgsPerSec)} msg/s`) : '–';
}

/** The whole report as markdown. */
export function renderMarkdown(report: Report): string {
  const lines: string[] = [`Measured ${report.startedAt} on ${report.machine}.`, report.settings, ''];
  if (report.measurements.length > 0) {
    lines.push(
      `Columns with several values read ${report.peers.join(' / ')}. msg/s: messages completed per second; p50/p99: latency from MAIL ` +
        'to the final end-of-message reply (from connect, for new conn per msg), max: the slowest message; CPU µs/msg: user + system time of the ' +
        'milter process tree per message, the system time in brackets; load gen CPU µs/msg: the same for the load generator, which runs on the same cores; ' +
        'cores busy: milter and load generator together; ' +
        'peak RSS: VmHWM of the milter during the cell. ⚠ marks wrong replies.',
      '',
    );
  }
  const jobs = [...new Set(report.measurements.map((m) => m.job))];
  const transports = [...new Set(report.measurements.map((m) => m.transport))];
  for (const job of jobs) {
    for (const transport of transports) {
      if (cellsOf(report, job, transport).length === 0) continue;
      lines.push(`### ${JOB_TITLES[job]}, ${TRANSPORT_TITLES[transport]}`, '', ...sectionTable(report, job, transport), '');
    }
  }
  const checks = targetChecks(report);
  if (checks.length > 0) {
    lines.push('### Targets (no-op job, unix socket, unless stated)', '', '| target | measured | |', '|---|---|---|');
    for (const check of checks) lines.push(`| ${check.target} | ${check.measured} | ${check.met ? 'met' : '**not met**'} |`);
    lines.push('');
  }
  lines.push(...roundsSection(report), ...nagleTable(report), ...idleSection(report), ...concurrencySection(report), ...chainSection(report), ...courierSection(report.courier, report.courierSkipped), ...problems(report));
  if (report.measurements.length > 0) {
    const busiest = report.peers.map((peer) => {
      const most = Math.max(0, ...report.measurements.filter((m) => m.peer === peer).map((m) => m.loadgenCores));
      return `${peer} ${Math.round(most * 100)}%`;
    });
    lines.push(`Load generator CPU, busiest cell of each peer, in % of one core: ${busiest.join(', ')}.`, '');
  }
  return lines.join('\n');
}
