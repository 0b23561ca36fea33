/**
 * `npm run bench`: milterkit, C libmilter and pymilter side by side, doing the same jobs under the
 * same load, on this machine. Prints a markdown table and writes bench/results/latest.md (and the
 * raw figures to latest.json). See docs/bench.md.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { runChainSection } from './lib/chain.js';
import { runConcurrency } from './lib/concurrency.js';
import { runCourierSection } from './lib/courier.js';
import { runIdle, warmUp, WARMUP_PASSES, type Amount } from './lib/loadgen.js';
import { bestRun, coresBusy, loadgenUsPerMsg, measureCell, roundFigures } from './lib/measure.js';
import { JOBS, parseOptions, UsageError, USAGE, type Job, type Options, type PeerName, type Transport } from './lib/options.js';
import { killAllPeers, milterkitNodeFlags, peerLaunchers, socketSpecFor, startPeer, type PeerLauncher, type RunningPeer } from './lib/peers.js';
import { treeRssKiB } from './lib/procfs.js';
import { renderMarkdown, renderSummary, cellLabel, type IdleMeasurement, type Measurement, type Report } from './lib/report.js';
import { BENCH_DIR, buildNativePrograms, chrootPackageVersion, COURIER_CHROOT, ensureCourierFilterPerl, ensurePackages, packageVersion, REPO_ROOT } from './lib/setup.js';

function log(line: string): void {
  process.stderr.write(`bench: ${line}\n`);
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function describeMachine(): string {
  const model = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? 'unknown CPU';
  return (
    `${model}, ${cpus().length} cores, Linux ${release()}, Node ${process.version}, ` +
    `libmilter ${packageVersion('libmilter-dev')}, pymilter ${packageVersion('python3-milter')}`
  );
}

function describeCourier(): string {
  return (
    `Inside the Courier chroot (Debian 12: courier-mta ${chrootPackageVersion('courier-mta')}, courier-filter-perl ${chrootPackageVersion('courier-filter-perl')}, ` +
    `perl ${chrootPackageVersion('perl')}), both filters started as courierfilter starts them (as the courier user, socket in allfilters, ` +
    'fd 3 closed when ready, stdin EOF to stop), one process each, logging at their defaults (milterkit: a line per message; Courier::Filter: ' +
    'rejections). Same checks in both: envelope sender and recipient patterns, a Subject pattern, attachment file names also inside zip ' +
    'archives (milterkit: a chain of two bench filters on the filter API and the bundled attachments; Courier::Filter: its Envelope, Header ' +
    'and Parts modules). Load from bench/courier-load.c: data and control files as Courier writes them, each connection one request.'
  );
}

function describeSettings(options: Options): string {
  const amount = options.messages ? `${options.messages} messages` : `${options.duration} s of load`;
  const runs = options.repeat > 1 ? ` (best of ${options.repeat} runs, peers alternating)` : '';
  return (
    `${amount} per cell${runs}, after warm-up load on each freshly started milter (every cell for ${options.warmup} s, ` +
    `${WARMUP_PASSES} times over). Load from ` +
    'bench/loadgen.c playing Postfix: protocol v6, its macros per stage, 10 headers, one recipient, ' +
    'ABORT after every message, every 10th message with REJECTME in its Subject.'
  );
}

function progressLine(m: Measurement): string {
  const label = cellLabel(m.cell);
  const warn = m.checkFailures || m.errors ? ` [${m.checkFailures} wrong replies, ${m.errors} errors]` : '';
  return (
    `${m.job} ${m.transport} conns ${label.conns} ${label.body} ${m.peer}: ${Math.round(m.msgsPerSec)} msg/s, ` +
    `p50 ${m.p50Ms.toFixed(2)} ms, p99 ${m.p99Ms.toFixed(2)} ms, ${m.cpuUsPerMsg.toFixed(0)} µs CPU/msg (${(m.systemUsPerMsg ?? 0).toFixed(0)} in kernel), ` +
    `load gen ${loadgenUsPerMsg(m).toFixed(0)} µs CPU/msg, ${coresBusy(m).toFixed(2)} cores busy${warn}`
  );
}

type Available = PeerLauncher & { available: true };

/** Starts every peer for one job and transport, measures each cell peer after peer, stops them. */
async function runSection(
  options: Options,
  launchers: Record<PeerName, Available>,
  peers: PeerName[],
  job: Job,
  transport: Transport,
  context: { loadgen: string; workDir: string; report: Report },
): Promise<void> {
  const started: RunningPeer[] = [];
  const amount: Amount = options.messages ? { messages: options.messages } : { seconds: options.duration };
  try {
    for (const [index, name] of peers.entries()) {
      const spec = socketSpecFor(name, index, transport, context.workDir);
      try {
        const launch = { command: launchers[name].command, args: launchers[name].args(job, spec) };
        const peer = await startPeer(name, launch, job, spec, context.loadgen, context.workDir);
        started.push(peer);
        await warmUp(context.loadgen, spec, job, options.cells, options.warmup);
      } catch (error) {
        context.report.skipped.push(`${name}, ${job} job, ${transport}: ${errorText(error)}`);
        log(`${name} (${job}, ${transport}) skipped: ${errorText(error)}`);
      }
    }
    for (const cell of options.cells) {
      const runs = new Map<PeerName, Measurement[]>(started.map((peer) => [peer.name, []]));
      for (let run = 0; run < options.repeat; run++) {
        for (const peer of started) {
          try {
            const metrics = await measureCell(peer, job, cell, amount, context.loadgen);
            const m: Measurement = { ...metrics, peer: peer.name, job, transport };
            runs.get(peer.name)!.push(m);
            log(progressLine(m));
          } catch (error) {
            const label = cellLabel(cell);
            context.report.skipped.push(`${peer.name}, ${job} job, ${transport}, conns ${label.conns}, ${label.body}: ${errorText(error)}`);
            log(`${peer.name} failed: ${errorText(error)}`);
          }
        }
      }
      for (const peerRuns of runs.values()) {
        const best = bestRun(peerRuns);
        if (best) context.report.measurements.push({ ...best, rounds: peerRuns.map(roundFigures) });
      }
    }
  } finally {
    await Promise.all(started.map((peer) => peer.stop()));
  }
}

/** Holds many idle connections to the milterkit milter and reads its RSS. */
async function measureIdle(options: Options, launcher: Available, loadgen: string, workDir: string): Promise<IdleMeasurement> {
  const spec = `unix:${join(workDir, 'idle.sock')}`;
  // Room for every idle connection: the server's default limit (SERVER_DEFAULTS.maxConnections) protects production daemons.
  const launch = { command: launcher.command, args: launcher.args('noop', spec, ['--max-connections', String(options.idleConns + 100)]) };
  const peer = await startPeer('milterkit', launch, 'noop', spec, loadgen, workDir);
  try {
    await sleep(500);
    const before = treeRssKiB(peer.pid);
    const { idle, measured } = await runIdle(loadgen, spec, options.idleConns, async () => {
      await sleep(1000); // let the milter finish setting up the last sessions
      return treeRssKiB(peer.pid);
    });
    return {
      peer: 'milterkit',
      requested: idle.requested,
      established: idle.established,
      openAtEnd: idle.open_at_end,
      rssBeforeMiB: before / 1024,
      rssIdleMiB: measured / 1024,
      kibPerConnection: idle.established > 0 ? (measured - before) / idle.established : 0,
    };
  } finally {
    await peer.stop();
  }
}

/** Prints the report and writes bench/results/latest.md and latest.json. */
function publish(report: Report): void {
  const markdown = renderMarkdown(report);
  const resultsDir = join(BENCH_DIR, 'results');
  mkdirSync(resultsDir, { recursive: true });
  const summary = report.measurements.length > 0 ? `## Summary\n\n${renderSummary(report)}\n\n## All figures\n\n` : '';
  writeFileSync(join(resultsDir, 'latest.md'), `# milterkit benchmark: latest run\n\n${summary}${markdown}`);
  writeFileSync(join(resultsDir, 'latest.json'), `${JSON.stringify(report, null, 2)}\n`);
  process.stdout.write(`\n${markdown}\n`);
  log('written to bench/results/latest.md and latest.json');
}

async function main(): Promise<number> {
  let options: Options | undefined;
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`bench: ${error.message}\n${USAGE}`);
    return 2;
  }
  if (!options) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (options.render) {
    publish(JSON.parse(readFileSync(options.render, 'utf8')) as Report);
    return 0;
  }
  const missing = ensurePackages(options.install, log);
  const programs = buildNativePrograms(missing);
  const launchers = peerLaunchers(programs, { profile: options.profile });
  const workDir = mkdtempSync(join(tmpdir(), 'milterkit-bench-'));
  const cleanUp = (): void => {
    killAllPeers();
    rmSync(workDir, { recursive: true, force: true });
  };
  process.once('SIGINT', () => {
    cleanUp();
    process.exit(130);
  });
  const report: Report = {
    startedAt: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    machine: describeMachine(),
    settings: describeSettings(options),
    peers: [],
    measurements: [],
    skipped: [],
    idle: undefined,
    idleSkipped: undefined,
    concurrency: undefined,
    concurrencySkipped: undefined,
    chain: undefined,
    chainSkipped: undefined,
    courier: undefined,
    courierSkipped: undefined,
  };
  const available = {} as Record<PeerName, Available>;
  for (const name of options.peers) {
    const launcher = launchers[name];
    if (launcher.available) {
      available[name] = launcher;
      report.peers.push(name);
    } else {
      report.skipped.push(`${name}: ${launcher.reason}`);
      log(`${name} not measured: ${launcher.reason}`);
    }
  }
  try {
    for (const job of JOBS.filter((j) => options.jobs.includes(j))) {
      for (const transport of options.transports) {
        if (options.cells.length === 0 || report.peers.length === 0) continue;
        await runSection(options, available, report.peers, job, transport, { loadgen: programs.loadgen, workDir, report });
      }
    }
    if (options.idleConns > 0) {
      const launcher = launchers.milterkit;
      if (!launcher.available) {
        report.idleSkipped = `milterkit is ${launcher.reason}`;
      } else {
        log(`idle test: ${options.idleConns} connections to milterkit`);
        try {
          report.idle = await measureIdle(options, launcher, programs.loadgen, workDir);
        } catch (error) {
          report.idleSkipped = errorText(error);
        }
      }
    }
    if (options.concurrency) {
      if (!launchers.milterkit.available) {
        report.concurrencySkipped = `milterkit is ${launchers.milterkit.reason}`;
      } else {
        log('concurrency models: CPU-heavy filter');
        try {
          const milterkit = launchers.milterkit;
          const noopCommand = (spec: string, workers: number) => ({
            command: milterkit.command,
            args: milterkit.args('noop', spec, workers > 0 ? ['--workers', String(workers)] : []),
          });
          report.concurrency = await runConcurrency(options, noopCommand, { loadgen: programs.loadgen, workDir, log });
        } catch (error) {
          report.concurrencySkipped = errorText(error);
        }
      }
    }
    if (options.chain) {
      if (!launchers.milterkit.available) {
        report.chainSkipped = `milterkit is ${launchers.milterkit.reason}`;
      } else {
        log('filter chain: protocol core, empty chain, bundled chain');
        try {
          report.chain = await runChainSection(options, milterkitNodeFlags({ profile: options.profile }), { loadgen: programs.loadgen, workDir, log });
        } catch (error) {
          report.chainSkipped = errorText(error);
        }
      }
    }
    if (options.courier) {
      const unavailable = ensureCourierFilterPerl(options.install, log);
      if (unavailable) {
        report.courierSkipped = unavailable;
        log(`Courier section not measured: ${unavailable}`);
      } else {
        log('Courier: milterkit courier daemon against Courier::Filter');
        try {
          report.courier = await runCourierSection(options, { chroot: COURIER_CHROOT, repoRoot: REPO_ROOT, driver: programs.courierLoad, workDir, log }, describeCourier());
        } catch (error) {
          report.courierSkipped = errorText(error);
        }
      }
    }
  } finally {
    cleanUp();
  }
  publish(report);
  const wrongVerdicts = (report.courier?.verdicts ?? []).some((v) => v.wrong > 0);
  const broken = wrongVerdicts || [...report.measurements, ...(report.concurrency?.measurements ?? []), ...(report.chain?.measurements ?? []), ...(report.courier?.measurements ?? [])].some(
    (m) => m.checkFailures > 0 || m.errors > 0,
  );
  return broken ? 1 : 0;
}

process.exitCode = await main();
