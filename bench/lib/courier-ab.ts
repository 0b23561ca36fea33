/**
 * Builds of the milterkit Courier daemon side by side: each build's daemon CPU per request (user
 * + system of the whole process, thread pool and GC included), under the Courier section's load
 * driver and corpus, with the builds' runs alternating (on a shared machine one run proves
 * nothing; the median of the runs is printed). Run as root after `npm run build`, with the older
 * build's `dist` copied inside the checkout (the checkout is what the chroot sees):
 *
 * ```sh
 * git worktree add /tmp/before <commit> && (cd /tmp/before && npm ci && npx tsc) && cp -r /tmp/before/dist bench/.build/before/
 * node dist/bench/lib/courier-ab.js plain 8 4 4 before=bench/.build/before/dist after=dist
 * ```
 *
 * Arguments: the request mix (`plain`, `multipart`, `recipients`, `mixed`), requests in flight,
 * seconds per run, runs per build, then `NAME=DIST[:NODE FLAGS]` per build, e.g.
 * `prof=dist:--cpu-prof --cpu-prof-dir=/var/lib/courier/tmp/milterkit-ab/prof` for a profile.
 * With `AB_HOOK` set, that shell command runs during each build's first run with `$PID` set to
 * the daemon's process (e.g. `strace -c -f -p $PID -o /tmp/strace-$NAME.txt`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BenchNamespace, CHROOT_NODE, CHROOT_PROJECT, mailUser, type CourierDaemon } from './courier-chroot.js';
import { writeCorpus, type MixName } from './courier-corpus.js';
import { milterkitConfig, runDriver } from './courier.js';
import { treeCpuSeconds } from './procfs.js';
import { BUILD_DIR, COURIER_CHROOT, REPO_ROOT } from './setup.js';

const CORPUS_DIR = '/var/lib/courier/tmp/milterkit-ab';

const [mix, conns, seconds, rounds, ...builds] = process.argv.slice(2);
if (!mix || !conns || !seconds || !rounds || builds.length === 0) {
  console.error('usage: courier-ab.js MIX CONNS SECONDS RUNS NAME=DIST[:NODE FLAGS]...');
  process.exit(2);
}
const driver = join(BUILD_DIR, 'courier-load');
const place = { hostDir: join(COURIER_CHROOT, CORPUS_DIR), chrootDir: CORPUS_DIR, ...mailUser(COURIER_CHROOT) };
const manifests = writeCorpus(place, Number(conns));
const workDir = mkdtempSync(join(tmpdir(), 'milterkit-courier-ab-'));
// Courier::Filter is not run here; its configuration path still gets a file.
writeFileSync(join(workDir, 'courier-filter-perl.conf'), '1;\n');
const namespace = await BenchNamespace.open(COURIER_CHROOT, REPO_ROOT, join(workDir, 'courier-filter-perl.conf'));
const daemons: Array<{ name: string; daemon: CourierDaemon; runs: number[] }> = [];
try {
  for (const build of builds) {
    const name = build.slice(0, build.indexOf('='));
    const [dist = '', ...flags] = build.slice(name.length + 1).split(':');
    const chrootDist = `${CHROOT_PROJECT}/${dist}`;
    writeFileSync(join(place.hostDir, `${name}.yaml`), milterkitConfig(chrootDist), { mode: 0o644 });
    const argv = [CHROOT_NODE, ...flags.join(':').split(' ').filter(Boolean), `${chrootDist}/src/cli/milterkit-courier.js`, '--name', `ab-${name}`, '--config', `${CORPUS_DIR}/${name}.yaml`];
    daemons.push({ name, daemon: await namespace.startFilter(`ab-${name}`, argv, join(workDir, `${name}.log`)), runs: [] });
  }
  const load = (daemon: CourierDaemon, inFlight: number, duration: number) =>
    runDriver(namespace, driver, ['--socket', daemon.socket, '--manifest', manifests[mix as MixName]!, '--conns', String(inFlight), '--duration', String(duration)]);
  // Warm-up, so that no build is measured while V8 still compiles its paths: about 3,000 requests
  // at 8 in flight leave TurboFan compiling into the first measured run, so each build gets three
  // rounds at the measured load (the end of a round sends some hot code back to be optimized again).
  for (const { daemon } of daemons) for (let round = 0; round < 3; round++) await load(daemon, Number(conns), 2);
  for (let round = 0; round < Number(rounds); round++) {
    for (const entry of daemons) {
      const hook: ChildProcess | undefined =
        process.env.AB_HOOK && round === 0 ? spawn('sh', ['-c', process.env.AB_HOOK], { env: { ...process.env, PID: String(entry.daemon.pid), NAME: entry.name }, stdio: 'inherit' }) : undefined;
      if (hook) await new Promise((resolve) => setTimeout(resolve, 1000));
      const before = treeCpuSeconds(entry.daemon.pid);
      const result = await load(entry.daemon, Number(conns), Number(seconds));
      const cpu = treeCpuSeconds(entry.daemon.pid) - before;
      if (hook) {
        hook.kill('SIGINT');
        await new Promise((resolve) => hook.once('close', resolve));
      }
      const perRequest = Math.round((cpu / Math.max(result.requests, 1)) * 1e6);
      entry.runs.push(perRequest);
      const wrong = result.check_failures + result.errors;
      console.log(`${entry.name} run ${round + 1}: ${Math.round(result.requests_per_s)} req/s, ${perRequest} µs CPU/request, ${(cpu / result.elapsed_s).toFixed(2)} cores${wrong ? `, ${wrong} WRONG REPLIES` : ''}`);
    }
  }
  for (const { name, runs } of daemons) {
    const sorted = [...runs].sort((a, b) => a - b);
    console.log(`${name}: median ${sorted[Math.floor(sorted.length / 2)]} µs CPU/request (runs ${runs.join(' / ')})`);
  }
} finally {
  await Promise.all(daemons.map(({ daemon }) => daemon.stop()));
  await namespace.close();
  rmSync(place.hostDir, { recursive: true, force: true });
}
