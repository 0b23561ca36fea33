/**
 * Everything the benchmark needs besides Node: Debian packages (installed when missing and run
 * as root) and the native programs it compiles at run time into bench/.build/ (outside git).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
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
  /** The load driver of the Courier section (bench/courier-load.c). */
  courierLoad: string;
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
    courierLoad: compile(join(BUILD_DIR, 'courier-load'), join(BENCH_DIR, 'courier-load.c'), []),
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

/** The Courier chroot of scripts/prerequisites/30-courier.sh (MILTERKIT_COURIER_CHROOT overrides, as for the tests). */
export const COURIER_CHROOT = process.env.MILTERKIT_COURIER_CHROOT ?? '/var/cache/milterkit/courier-chroot';
/** Courier::Filter and what its Parts module needs for MIME parts and zip archives. */
const COURIER_FILTER_PACKAGES = ['courier-filter-perl', 'libmime-tools-perl', 'libarchive-zip-perl', 'libio-stringy-perl'];

function chrootPackageInstalled(pkg: string): boolean {
  const result = spawnSync('chroot', [COURIER_CHROOT, 'dpkg-query', '-W', '-f=${Status}', pkg], { encoding: 'utf8' });
  return result.status === 0 && result.stdout.includes('install ok installed');
}

/** Version of a package installed in the Courier chroot. */
export function chrootPackageVersion(pkg: string): string {
  const result = spawnSync('chroot', [COURIER_CHROOT, 'dpkg-query', '-W', '-f=${Version}', pkg], { encoding: 'utf8' });
  return result.status === 0 ? result.stdout.trim() : 'not installed';
}

/**
 * Makes Courier::Filter available in the Courier chroot (it depends on courier-mta, which
 * conflicts with the host's MTAs). Returns why the Courier section cannot run, or undefined.
 */
export function ensureCourierFilterPerl(allowInstall: boolean, log: (line: string) => void): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (it runs both filters in the Courier chroot, in a mount namespace of its own)';
  if (!existsSync(join(COURIER_CHROOT, '.milterkit-base-v1'))) return `no Courier chroot at ${COURIER_CHROOT}: run scripts/prerequisites/30-courier.sh`;
  const missing = COURIER_FILTER_PACKAGES.filter((pkg) => !chrootPackageInstalled(pkg));
  if (missing.length === 0) return undefined;
  if (!allowInstall) return `${missing.join(' ')} not installed in ${COURIER_CHROOT} (--no-install given)`;
  log(`installing into the Courier chroot: ${missing.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = (): boolean =>
    spawnSync('chroot', [COURIER_CHROOT, 'apt-get', 'install', '-y', '-q', '--no-install-recommends', ...missing], { stdio: ['ignore', 'ignore', 'inherit'], env }).status === 0;
  if (!install()) {
    execFileSync('chroot', [COURIER_CHROOT, 'apt-get', 'update', '-q'], { stdio: ['ignore', 'ignore', 'inherit'], env });
    if (!install()) return `apt-get could not install ${missing.join(' ')} in ${COURIER_CHROOT}`;
  }
  // Its maintainer script enables the filter for courierfilter; the benchmark starts it itself,
  // and the Courier end-to-end test must not find it enabled.
  rmSync(join(COURIER_CHROOT, 'etc/courier/filters/active/courier-filter-perl'), { force: true });
  return undefined;
}
