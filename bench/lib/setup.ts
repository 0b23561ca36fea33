/**
 * Everything the benchmark needs besides Node: Debian packages (installed when missing and run
 * as root) and the native programs it compiles at run time into bench/.build/ (outside git).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

/** The repository root, found from the compiled file (dist/bench/lib/setup.js). */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const BENCH_DIR = join(REPO_ROOT, 'bench');
export const BUILD_DIR = join(BENCH_DIR, '.build');

/** Debian's own interpreter: python3-milter is installed for it, not for any other python3 on PATH. */
export const DEBIAN_PYTHON = '/usr/bin/python3';

const PACKAGES = ['gcc', 'libmilter-dev', 'python3-milter'] as const;
type Package = (typeof PACKAGES)[number];

function isInstalled(pkg: Package): boolean {
  const result = spawnSync('dpkg-query', ['-W', '-f=${Status}', pkg], { encoding: 'utf8' });
  return result.status === 0 && result.stdout.includes('install ok installed');
}

/**
 * Installs the missing Debian packages when running as root and allowed to; returns the ones
 * still missing afterwards (the caller skips what depends on them).
 */
export function ensurePackages(allowInstall: boolean, log: (line: string) => void): Set<Package> {
  const missing = PACKAGES.filter((pkg) => !isInstalled(pkg));
  if (missing.length === 0) return new Set();
  const isRoot = process.getuid?.() === 0;
  if (!allowInstall || !isRoot) {
    log(`missing Debian packages: ${missing.join(' ')} (${isRoot ? '--no-install given' : 'not root'}); install them with apt-get`);
    return new Set(missing);
  }
  log(`installing Debian packages: ${missing.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  execFileSync('apt-get', ['update', '-q'], { stdio: ['ignore', 'ignore', 'inherit'], env });
  execFileSync('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...missing], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env,
  });
  return new Set(PACKAGES.filter((pkg) => !isInstalled(pkg)));
}

function isStale(output: string, sources: string[]): boolean {
  if (!existsSync(output)) return true;
  const built = statSync(output).mtimeMs;
  return sources.some((source) => statSync(source).mtimeMs > built);
}

function compile(output: string, source: string, extraArgs: string[]): string {
  if (isStale(output, [source])) {
    execFileSync('gcc', ['-O2', '-Wall', '-Wextra', '-pthread', '-o', output, source, ...extraArgs], {
      stdio: ['ignore', 'inherit', 'inherit'],
    });
  }
  return output;
}

/** Native programs of the run; a peer is undefined when its package is missing. */
export interface NativePrograms {
  loadgen: string;
  libmilterPeer: string | undefined;
  pymilterPeer: string | undefined;
  epollPeer: string;
}

/** Compiles the load generator and the C peer if their sources changed since the last build. */
export function buildNativePrograms(missing: ReadonlySet<string>): NativePrograms {
  if (missing.has('gcc')) throw new Error('gcc is needed to build the load generator (apt-get install gcc)');
  mkdirSync(BUILD_DIR, { recursive: true });
  return {
    loadgen: compile(join(BUILD_DIR, 'loadgen'), join(BENCH_DIR, 'loadgen.c'), []),
    libmilterPeer: missing.has('libmilter-dev')
      ? undefined
      : compile(join(BUILD_DIR, 'libmilter-peer'), join(BENCH_DIR, 'peers', 'libmilter-peer.c'), ['-lmilter']),
    pymilterPeer: missing.has('python3-milter') ? undefined : join(BENCH_DIR, 'peers', 'pymilter-peer.py'),
    epollPeer: compile(join(BUILD_DIR, 'epoll-peer'), join(BENCH_DIR, 'peers', 'epoll-peer.c'), []),
  };
}

/** Installed version of a Debian package, for the report's footer. */
export function packageVersion(pkg: string): string {
  const result = spawnSync('dpkg-query', ['-W', '-f=${Version}', pkg], { encoding: 'utf8' });
  return result.status === 0 ? result.stdout.trim() : 'not installed';
}
