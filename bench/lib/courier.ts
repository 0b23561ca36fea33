/**
 * The Courier section: the milterkit Courier daemon against Courier::Filter (Debian's
 * courier-filter-perl), both running the same checks (envelope sender and recipient rules, a
 * header rule, attachment file names also inside zip archives) inside the Courier chroot, under
 * the same load from bench/courier-load.c. Every reply is checked against the verdict its request
 * must get; a wrong one fails the run.
 */
import { spawn } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BenchNamespace, CHROOT_NODE, CHROOT_PROJECT, mailUser, type CourierDaemon } from './courier-chroot.js';
import type { LoadResult } from './loadgen.js';
import { KINDS, MIXES, RULES, writeCorpus, type MixName } from './courier-corpus.js';
import { resetPeakRss, treeCpuSeconds, treePeakRssKiB } from './procfs.js';
import type { Options } from './options.js';

export const COURIER_PEERS = ['milterkit', 'courier-filter'] as const;
export type CourierPeer = (typeof COURIER_PEERS)[number];
export const COURIER_CONNS = [1, 8, 64] as const;

/** The chroot's directory for the benchmark's files (Courier keeps its own under tmp/ too). */
const CORPUS_DIR = '/var/lib/courier/tmp/milterkit-bench';
const MILTERKIT_NAME = 'milterkit-bench';
const PERL_NAME = 'courier-filter-perl';

export interface CourierCell {
  mix: MixName;
  conns: number;
}

export interface CourierMeasurement {
  peer: CourierPeer;
  cell: CourierCell;
  requests: number;
  requestsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Filter CPU (user + system) per request, µs, of the run reported. */
  cpuUsPerRequest: number;
  /** CPU µs per request of every run of the cell. */
  cpuUsPerRequestRuns: number[];
  peakRssMiB: number;
  /** Cores the load driver kept busy. */
  driverCores: number;
  /** Cores the filter kept busy. */
  filterCores: number;
  accepted: number;
  rejected: number;
  checkFailures: number;
  errors: number;
  problems: string;
  /** The first reply to each request kind. */
  firstReplies: Record<string, string>;
}

/** One request of every kind, one after the other: the replies compared in the report. */
export interface CourierVerdicts {
  peer: CourierPeer;
  replies: Record<string, string>;
  /** Replies that were not the verdict their request must get (and connection errors). */
  wrong: number;
  problems: string;
}

export interface CourierReport {
  /** Versions and how the peers ran. */
  setup: string;
  verdicts: CourierVerdicts[];
  measurements: CourierMeasurement[];
  skipped: string[];
}

/** What the Courier load driver reports: the load generator's figures, counted in requests. */
interface DriverResult extends Pick<LoadResult, 'elapsed_s' | 'p50_ms' | 'p99_ms' | 'max_ms' | 'accepted' | 'rejected' | 'check_failures' | 'errors' | 'loadgen_cpu_s'> {
  requests: number;
  requests_per_s: number;
  first_replies: Record<string, string>;
}

/**
 * The chain of the milterkit daemon: the filter API's format, two bench filters and the bundled
 * attachments; `dist` is the build (inside the chroot) whose bench filters it loads.
 */
export function milterkitConfig(dist = `${CHROOT_PROJECT}/dist`): string {
  const filters = `${dist}/bench/courier`;
  return [
    '# Written by the benchmark: the checks of courier-filter-perl.conf, on the filter API.',
    `courier: { socketDirectory: allfilters }`,
    'limits: { maxConnections: 256 }',
    'chain:',
    `  - filter: ${filters}/envelope-rules.js`,
    `    options: { sender: ${JSON.stringify(RULES.sender)}, recipient: ${JSON.stringify(RULES.recipient)} }`,
    `  - filter: ${filters}/header-rules.js`,
    `    options: { fields: { Subject: ${JSON.stringify(RULES.subject)} } }`,
    '  - filter: attachments',
    `    options: { blockedPattern: ${JSON.stringify(RULES.attachment)}, scanArchives: true }`,
    '',
  ].join('\n');
}

/** A Perl regular expression literal; `@` would interpolate an array. */
function perlRegex(source: string, flags = ''): string {
  return `qr/${source.replace(/@/g, '\\@').replace(/\//g, '\\/')}/${flags}`;
}

/** Courier::Filter's configuration: Envelope, Header and Parts (MIME parts and zip contents), logging to stderr. */
function perlConfig(): string {
  return `# Written by the benchmark: the checks of the milterkit chain, in Courier::Filter's modules.
use utf8;
use Courier::Filter::Logger::IOHandle;
use Courier::Filter::Module::Envelope;
use Courier::Filter::Module::Header;
use Courier::Filter::Module::Parts;

$options = {
    logger  => Courier::Filter::Logger::IOHandle->new(handle => \\*STDERR),
    modules => [
        Courier::Filter::Module::Envelope->new(
            fields => { sender => ${perlRegex(RULES.sender)}, recipient => ${perlRegex(RULES.recipient)} },
        ),
        Courier::Filter::Module::Header->new(fields => { subject => ${perlRegex(RULES.subject)} }),
        Courier::Filter::Module::Parts->new(
            max_message_size => 64 * 1024 * 1024,
            views            => ['raw', 'zip'],
            signatures       => [
                { file_name => ${perlRegex(RULES.attachment, 'i')}, response => 'Prohibited attachment detected' },
            ],
        ),
    ],
};
`;
}

export function runDriver(namespace: BenchNamespace, driver: string, args: string[]): Promise<DriverResult & { stderr: string }> {
  const { command, args: fullArgs } = namespace.command(driver, args);
  return new Promise((resolve, reject) => {
    const child = spawn(command, fullArgs, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (text: string) => (stdout += text));
    child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
    child.on('error', reject);
    child.on('close', (code) => {
      const json = stdout.trim().split('\n').pop() ?? '';
      if (!json.startsWith('{')) return reject(new Error(`courier load driver failed (exit ${code}): ${stderr.trim() || 'no output'}`));
      resolve({ ...(JSON.parse(json) as DriverResult), stderr: stderr.trim() });
    });
  });
}

interface Context {
  chroot: string;
  repoRoot: string;
  driver: string;
  workDir: string;
  log: (line: string) => void;
}

async function measure(
  namespace: BenchNamespace,
  daemon: CourierDaemon,
  manifest: string,
  conns: number,
  amount: string[],
  context: Context,
): Promise<Omit<CourierMeasurement, 'peer' | 'cell' | 'cpuUsPerRequestRuns'>> {
  resetPeakRss(daemon.pid);
  const before = treeCpuSeconds(daemon.pid);
  const result = await runDriver(namespace, context.driver, ['--socket', daemon.socket, '--manifest', manifest, '--conns', String(conns), ...amount]);
  const cpuSeconds = treeCpuSeconds(daemon.pid) - before;
  return {
    requests: result.requests,
    requestsPerSec: result.requests_per_s,
    p50Ms: result.p50_ms,
    p99Ms: result.p99_ms,
    maxMs: result.max_ms,
    cpuUsPerRequest: (cpuSeconds / Math.max(result.requests, 1)) * 1e6,
    peakRssMiB: treePeakRssKiB(daemon.pid) / 1024,
    driverCores: result.loadgen_cpu_s / result.elapsed_s,
    filterCores: cpuSeconds / result.elapsed_s,
    accepted: result.accepted,
    rejected: result.rejected,
    checkFailures: result.check_failures,
    errors: result.errors,
    problems: result.stderr.split('\n').slice(0, 3).join(' '),
    firstReplies: result.first_replies,
  };
}

/** The cells: every request mix at each selected concurrency. */
function cellsOf(options: Options): CourierCell[] {
  const conns = [...new Set(options.sectionCells.map((cell) => cell.conns))].filter((n) => (COURIER_CONNS as readonly number[]).includes(n));
  return Object.keys(MIXES).flatMap((mix) => conns.map((n) => ({ mix, conns: n })));
}

/** Runs the section; `packageVersion` reads a package's version inside the chroot. */
export async function runCourierSection(options: Options, context: Context, setup: string): Promise<CourierReport> {
  const report: CourierReport = { setup, verdicts: [], measurements: [], skipped: [] };
  const user = mailUser(context.chroot);
  const cells = cellsOf(options);
  const slots = Math.max(...cells.map((cell) => cell.conns), 1);
  const place = { hostDir: join(context.chroot, CORPUS_DIR), chrootDir: CORPUS_DIR, ...user };
  const manifests = writeCorpus(place, slots);
  const milterkitYaml = join(place.hostDir, 'milterkit.yaml');
  writeFileSync(milterkitYaml, milterkitConfig(), { mode: 0o644 });
  const perlConf = join(context.workDir, 'courier-filter-perl.conf');
  writeFileSync(perlConf, perlConfig(), { mode: 0o644 });
  const namespace = await BenchNamespace.open(context.chroot, context.repoRoot, perlConf);
  const daemons: Array<{ peer: CourierPeer; daemon: CourierDaemon }> = [];
  try {
    const starts: Array<[CourierPeer, string, string[]]> = [
      ['milterkit', MILTERKIT_NAME, [CHROOT_NODE, `${CHROOT_PROJECT}/dist/src/cli/milterkit-courier.js`, '--name', MILTERKIT_NAME, '--config', join(CORPUS_DIR, 'milterkit.yaml')]],
      ['courier-filter', PERL_NAME, ['/usr/bin/perl', `/usr/lib/courier/filters/${PERL_NAME}`]],
    ];
    for (const [peer, name, argv] of starts) {
      try {
        const daemon = await namespace.startFilter(name, argv, join(context.workDir, `courier-${peer}.log`));
        daemons.push({ peer, daemon });
        const once = await measure(namespace, daemon, manifests.mixed, 1, ['--requests', String(KINDS.length)], context);
        report.verdicts.push({ peer, replies: once.firstReplies, wrong: once.checkFailures + once.errors, problems: once.problems });
        // Warm-up with every mix, so that no cell is measured while V8 still compiles the paths
        // its requests take (the first cells used to be); it also proves the socket serves.
        for (const mix of Object.keys(MIXES)) {
          const warm = await measure(namespace, daemon, manifests[mix]!, 8, ['--duration', String(options.warmup)], context);
          if (warm.requests === 0) throw new Error(`${name} answered no request: ${warm.problems}`);
        }
      } catch (error) {
        report.skipped.push(`${peer}: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
    const amount = options.messages ? ['--requests', String(options.messages)] : ['--duration', String(options.duration)];
    for (const cell of cells) {
      const runs = new Map<CourierPeer, Array<Omit<CourierMeasurement, 'peer' | 'cell' | 'cpuUsPerRequestRuns'>>>();
      for (let run = 0; run < options.repeat; run++) {
        for (const { peer, daemon } of daemons) {
          const m = await measure(namespace, daemon, manifests[cell.mix]!, cell.conns, amount, context);
          runs.set(peer, [...(runs.get(peer) ?? []), m]);
          const warn = m.checkFailures || m.errors ? ` [${m.checkFailures} wrong replies, ${m.errors} errors]` : '';
          context.log(`courier ${cell.mix} ${cell.conns} conns ${peer}: ${Math.round(m.requestsPerSec)} req/s, p99 ${m.p99Ms.toFixed(2)} ms, ${m.cpuUsPerRequest.toFixed(0)} µs CPU/req${warn}`);
        }
      }
      for (const [peer, peerRuns] of runs) {
        const ranked = [...peerRuns].sort((a, b) => Number(a.checkFailures + a.errors > 0) - Number(b.checkFailures + b.errors > 0) || b.requestsPerSec - a.requestsPerSec);
        report.measurements.push({ ...ranked[0]!, peer, cell, cpuUsPerRequestRuns: peerRuns.map((m) => m.cpuUsPerRequest) });
      }
    }
  } finally {
    await Promise.all(daemons.map(({ daemon }) => daemon.stop()));
    await namespace.close();
    rmSync(place.hostDir, { recursive: true, force: true });
  }
  return report;
}

/** Request kinds and the verdict each must get, for the report. */
export const REQUEST_KINDS = KINDS.map((kind) => ({ name: kind.name, expect: kind.expect, keyword: kind.keyword }));
