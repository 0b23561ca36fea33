/**
 * The milters under test: how to start each one for a job on a socket, wait until it serves,
 * and stop it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, openSync, closeSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runLoad, type Check } from './loadgen.js';
import type { Job, PeerName, Transport } from './options.js';
import { BUILD_DIR, DEBIAN_PYTHON, REPO_ROOT, type NativePrograms } from './setup.js';

/** First TCP port of the benchmark; peers use consecutive ports (the project's bench range is 2700-2799). */
const FIRST_PORT = 2701;
const READY_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 5_000;

/** The compiled milterkit bench milter and the library it needs. */
export const MILTERKIT_SCRIPT = join(REPO_ROOT, 'dist', 'bench', 'milters', 'milterkit.js');
const MILTERKIT_LIBRARY = join(REPO_ROOT, 'dist', 'src', 'index.js');

/** How to start one peer, or why it cannot be started on this machine. */
export type PeerLauncher =
  | { available: true; command: string; args: (job: Job, socketSpec: string, extra?: string[]) => string[] }
  | { available: false; reason: string };

export interface LauncherSettings {
  profile: boolean;
}

/** Node's flags for the milterkit milters: with --profile, a V8 CPU profile of each into bench/.build/profiles/. */
export function milterkitNodeFlags(settings: LauncherSettings): string[] {
  if (!settings.profile) return [];
  const profileDir = join(BUILD_DIR, 'profiles');
  mkdirSync(profileDir, { recursive: true });
  return ['--cpu-prof', '--cpu-prof-dir', profileDir];
}

/** Start commands of every peer, given what was built and installed. */
export function peerLaunchers(programs: NativePrograms, settings: LauncherSettings): Record<PeerName, PeerLauncher> {
  const nodeFlags = milterkitNodeFlags(settings);
  const milterkit: PeerLauncher =
    existsSync(MILTERKIT_LIBRARY) && existsSync(MILTERKIT_SCRIPT)
      ? {
          available: true,
          command: process.execPath,
          args: (job, spec, extra = []) => [...nodeFlags, MILTERKIT_SCRIPT, job, spec, ...extra],
        }
      : { available: false, reason: 'not built: dist/src/index.js or dist/bench/milters/milterkit.js is missing (run tsc)' };
  const libmilterPeer = programs.libmilterPeer;
  const libmilter: PeerLauncher = libmilterPeer
    ? { available: true, command: libmilterPeer, args: (job, spec) => [job, spec] }
    : { available: false, reason: 'libmilter-dev is not installed' };
  const pymilterPeer = programs.pymilterPeer;
  const pymilter: PeerLauncher = pymilterPeer
    ? { available: true, command: DEBIAN_PYTHON, args: (job, spec) => [pymilterPeer, job, spec] }
    : { available: false, reason: 'python3-milter is not installed' };
  const epollPeer = programs.epollPeer;
  const cEpoll: PeerLauncher = { available: true, command: epollPeer, args: (job, spec) => [job, spec] };
  return { milterkit, libmilter, pymilter, 'c-epoll': cEpoll };
}

/** Where a peer listens: libmilter's syntax, which every peer here understands. */
export function socketSpecFor(peer: PeerName, peerIndex: number, transport: Transport, socketDir: string): string {
  return transport === 'unix' ? `unix:${join(socketDir, `${peer}.sock`)}` : `inet:${FIRST_PORT + peerIndex}@127.0.0.1`;
}

/** A started milter process. */
export interface RunningPeer<Name extends string = PeerName> {
  name: Name;
  pid: number;
  socketSpec: string;
  logFile: string;
  stop(): Promise<void>;
}

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
  });
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
  await exited(child);
  clearTimeout(timer);
}

const running = new Set<ChildProcess>();

/** Stops every peer still running (used when the benchmark is interrupted). */
export function killAllPeers(): void {
  for (const child of running) child.kill('SIGKILL');
}

/**
 * Starts a milter and waits until it has filtered one complete message, answered as `check`
 * requires, which proves it listens and works.
 */
export async function startPeer<Name extends string>(
  name: Name,
  command: { command: string; args: string[] },
  check: Check,
  socketSpec: string,
  loadgen: string,
  logDir: string,
): Promise<RunningPeer<Name>> {
  const checkName = typeof check === 'string' ? check : 'header';
  const logFile = join(logDir, `${name}-${checkName}-${socketSpec.startsWith('unix:') ? 'unix' : 'tcp'}.log`);
  const logFd = openSync(logFile, 'a');
  const child = spawn(command.command, command.args, { stdio: ['ignore', logFd, logFd], cwd: REPO_ROOT });
  closeSync(logFd);
  running.add(child);
  child.once('exit', () => running.delete(child));
  const stop = async (): Promise<void> => stopChild(child);
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let lastError = '';
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) break;
    try {
      const probe = await runLoad(loadgen, socketSpec, check, { conns: 1, bodyBytes: 100, perMessage: false }, { messages: 1 });
      if (probe.messages === 1 && probe.errors === 0 && probe.check_failures === 0) {
        return { name, pid: child.pid!, socketSpec, logFile, stop };
      }
      lastError = probe.stderr || 'probe message was not answered as the job requires';
    } catch (error) {
      lastError = error instanceof Error ? error.message : String(error);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  await stop();
  const log = existsSync(logFile) ? readFileSync(logFile, 'utf8').trim().split('\n').slice(-5).join(' | ') : '';
  throw new Error(`${name} did not start on ${socketSpec}: ${lastError}${log ? `; its log: ${log}` : ''}`);
}
