/**
 * Where Courier keeps things. The authoritative source is the `courier-config` program; every
 * value can be overridden (tests, unusual builds) and Debian's layout is the fallback.
 *
 * @packageDocumentation
 */
import { spawnWithoutReadyFd } from './ready-fd.js';

/** Courier's installation directories and mail user, as `courier-config` prints them. */
export interface CourierDirectories {
  readonly prefix: string;
  readonly bindir: string;
  readonly sbindir: string;
  readonly libexecdir: string;
  readonly sysconfdir: string;
  readonly localstatedir: string;
  readonly mailuser: string;
  readonly mailgroup: string;
}

/** Debian's layout (courier-mta 1.0.16), used for anything neither overridden nor reported. */
export const DEBIAN_COURIER_DIRECTORIES: CourierDirectories = {
  prefix: '/usr',
  bindir: '/usr/bin',
  sbindir: '/usr/sbin',
  libexecdir: '/usr/lib/courier',
  sysconfdir: '/etc/courier',
  localstatedir: '/var/lib/courier',
  mailuser: 'courier',
  mailgroup: 'courier',
};

const KNOWN_KEYS = Object.keys(DEBIAN_COURIER_DIRECTORIES) as Array<keyof CourierDirectories>;

/** Parses `courier-config` output (`key=value` lines; other keys are ignored). */
export function parseCourierConfigOutput(text: string): Partial<CourierDirectories> {
  const found: Partial<Record<keyof CourierDirectories, string>> = {};
  for (const line of text.split('\n')) {
    const match = /^([a-z_]+)=(.*)$/.exec(line.trim());
    if (!match) continue;
    const key = match[1] as keyof CourierDirectories;
    if (KNOWN_KEYS.includes(key)) found[key] = match[2]!.replace(/^"(.*)"$/, '$1');
  }
  return found;
}

/** How to find Courier's directories. */
export interface DirectoryDiscoveryOptions {
  /** Values that win over everything else. */
  overrides?: Partial<CourierDirectories>;
  /** The `courier-config` command (default: `courier-config` on PATH, then `/usr/bin/courier-config`). */
  command?: string;
  /** Bound on how long `courier-config` may take. */
  timeoutMs?: number;
}

/**
 * Finds Courier's directories: overrides, then `courier-config`, then Debian's defaults. The
 * command is skipped when the overrides already name everything.
 */
export async function discoverCourierDirectories(
  options: DirectoryDiscoveryOptions = {},
): Promise<{ directories: CourierDirectories; source: string }> {
  const overrides = stripUndefined(options.overrides ?? {});
  if (KNOWN_KEYS.every((key) => overrides[key] !== undefined)) {
    return { directories: { ...DEBIAN_COURIER_DIRECTORIES, ...overrides }, source: 'overrides' };
  }
  const commands = options.command ? [options.command] : ['courier-config', '/usr/bin/courier-config'];
  for (const command of commands) {
    const output = await spawnWithoutReadyFd(command, [], { timeoutMs: options.timeoutMs ?? 5000 }).catch(() => undefined);
    if (output === undefined || output.exitCode !== 0) continue;
    const reported = parseCourierConfigOutput(output.stdout);
    return { directories: { ...DEBIAN_COURIER_DIRECTORIES, ...reported, ...overrides }, source: command };
  }
  return { directories: { ...DEBIAN_COURIER_DIRECTORIES, ...overrides }, source: 'defaults' };
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
