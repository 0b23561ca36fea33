/**
 * Courier's configuration as a filter sees it (pythonfilter's `courier.config`): host names,
 * local and hosted domains, aliases and the SMTP access database, read from the text sources
 * under `sysconfdir` and re-read when they change.
 *
 * @packageDocumentation
 */
import { reverse } from 'node:dns/promises';
import { access } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { DEBIAN_COURIER_DIRECTORIES, type CourierDirectories } from '../paths.js';
import { spawnWithoutReadyFd } from '../ready-fd.js';
import { accessLookupKeys, normaliseAccessKey } from './ip.js';
import { CachedSource, meaningfulLines, readSourceText } from './sources.js';

/** One smtpaccess entry: the raw value (`allow,RELAYCLIENT`) and the key it matched. */
export interface SmtpAccessEntry {
  readonly key: string;
  readonly value: string;
}

/**
 * Compares dotted version strings numerically (`1.0.16` > `1.0.9`); missing parts count as 0
 * and a non-numeric tail of a part is ignored (`0.78.0rc1` ≈ `0.78.0`).
 */
export function compareVersions(a: string, b: string): number {
  const parts = (v: string) => v.split('.').map((p) => Number.parseInt(p, 10) || 0);
  const left = parts(a);
  const right = parts(b);
  for (let i = 0; i < Math.max(left.length, right.length); i++) {
    const diff = (left[i] ?? 0) - (right[i] ?? 0);
    if (diff !== 0) return Math.sign(diff);
  }
  return 0;
}

/** Parses smtpaccess text: `PREFIX<whitespace>allow|deny[,NAME[=value]…]` per line. */
export function parseSmtpAccess(text: string | undefined): Map<string, string> {
  const table = new Map<string, string>();
  for (const line of meaningfulLines(text)) {
    const match = /^(\S+)\s+(.*)$/.exec(line);
    if (match) table.set(normaliseAccessKey(match[1]!), match[2]!.trim());
  }
  return table;
}

/**
 * One variable from an smtpaccess value: undefined if absent, `''` if present without a value,
 * else the value (surrounding double quotes removed).
 */
export function accessVariable(value: string, name: string): string | undefined {
  for (const item of value.split(',')) {
    const entry = item.trim();
    if (entry === name) return '';
    if (entry.startsWith(name + '=')) return entry.slice(name.length + 1).replace(/^"(.*)"$/, '$1');
  }
  return undefined;
}

/** Parses a locals or hosteddomains source into lower-cased first fields. */
function parseDomainList(text: string | undefined): Set<string> {
  return new Set(meaningfulLines(text).map((line) => line.split(/\s+/)[0]!.toLowerCase()));
}

/**
 * Parses an aliases source: `name: target, target` with continuation lines starting with
 * whitespace. Unqualified names are qualified with `domain`.
 */
export function parseAliases(text: string | undefined, domain: string): Map<string, string[]> {
  const table = new Map<string, string[]>();
  const logical: string[] = [];
  for (const raw of (text ?? '').split('\n')) {
    if (raw.trim() === '' || raw.trimStart().startsWith('#')) continue;
    if (/^[ \t]/.test(raw) && logical.length > 0) logical[logical.length - 1] += ' ' + raw.trim();
    else logical.push(raw.trim());
  }
  const qualify = (address: string) => (address.includes('@') || /^[|/:]/.test(address) ? address : `${address}@${domain}`);
  for (const line of logical) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = qualify(line.slice(0, colon).trim()).toLowerCase();
    const targets = line
      .slice(colon + 1)
      .split(',')
      .map((t) => t.trim())
      .filter(Boolean)
      .map(qualify);
    table.set(name, [...(table.get(name) ?? []), ...targets]);
  }
  return table;
}

/** True when `domain` or one of its parents written as `.parent` is in the set. */
function matchesDomainOrParent(set: ReadonlySet<string>, domain: string): boolean {
  if (set.has(domain)) return true;
  const labels = domain.split('.');
  for (let i = 1; i < labels.length; i++) {
    if (set.has('.' + labels.slice(i).join('.'))) return true;
  }
  return false;
}

/**
 * Reads Courier's configuration for filters. One instance per daemon is enough; every lookup
 * re-reads a source only when it changed.
 */
export class CourierConfig {
  private readonly dirs: CourierDirectories;
  private readonly smtpAccessTable: CachedSource<Map<string, string>>;
  private readonly localsTable: CachedSource<Set<string> | undefined>;
  private readonly hostedTable: CachedSource<Set<string>>;
  private readonly aliasTexts: CachedSource<string | undefined>;
  private versionPromise: Promise<string | undefined> | undefined;

  constructor(directories: Partial<CourierDirectories> = {}) {
    this.dirs = { ...DEBIAN_COURIER_DIRECTORIES, ...directories };
    const etc = (name: string) => join(this.dirs.sysconfdir, name);
    this.smtpAccessTable = new CachedSource(etc('smtpaccess'), parseSmtpAccess);
    this.localsTable = new CachedSource(etc('locals'), (t) => (t === undefined ? undefined : parseDomainList(t)));
    this.hostedTable = new CachedSource(etc('hosteddomains'), parseDomainList);
    this.aliasTexts = new CachedSource(etc('aliases'), (t) => t);
  }

  /** The directories this instance reads from. */
  get directories(): CourierDirectories {
    return this.dirs;
  }

  private async firstLine(name: string): Promise<string | undefined> {
    return meaningfulLines(await readSourceText(join(this.dirs.sysconfdir, name)))[0];
  }

  /** Courier's `me`: the `me` file, else the host name. */
  async me(): Promise<string> {
    return (await this.firstLine('me')) ?? hostname();
  }

  /** `defaultdomain`, else {@link me}. */
  async defaultDomain(): Promise<string> {
    return (await this.firstLine('defaultdomain')) ?? this.me();
  }

  /** `dsnfrom`, else `"Courier mail server at <me>" <@>`. */
  async dsnFrom(): Promise<string> {
    return (await this.firstLine('dsnfrom')) ?? `"Courier mail server at ${await this.me()}" <@>`;
  }

  /**
   * `esmtphelo`, else {@link me}. A `*` means the reverse DNS name of the local address of the
   * connection, which the caller passes (falls back to `me` when it has none or DNS fails).
   */
  async esmtpHelo(localAddress?: string): Promise<string> {
    const configured = await this.firstLine('esmtphelo');
    if (configured !== '*') return configured ?? this.me();
    if (localAddress) {
      const names = await reverse(localAddress).catch(() => [] as string[]);
      if (names[0]) return names[0];
    }
    return this.me();
  }

  /** True when the `locallowercase` file exists. */
  async localLowercase(): Promise<boolean> {
    return access(join(this.dirs.sysconfdir, 'locallowercase')).then(
      () => true,
      () => false,
    );
  }

  /**
   * Whether `domain` is local: listed in `locals` (a `.parent` entry covers sub-domains, a
   * `!domain` entry excludes); with no `locals`, only `me` is local.
   */
  async isLocal(domain: string): Promise<boolean> {
    const wanted = domain.toLowerCase();
    const locals = await this.localsTable.get();
    if (locals === undefined) return wanted === (await this.me()).toLowerCase();
    if (locals.has('!' + wanted)) return false;
    return matchesDomainOrParent(locals, wanted);
  }

  /** Whether `domain` (or a `.parent` entry above it) is in `hosteddomains`. */
  async isHostedDomain(domain: string): Promise<boolean> {
    return matchesDomainOrParent(await this.hostedTable.get(), domain.toLowerCase());
  }

  /**
   * The expansion of a local alias, or undefined. Unqualified addresses (the query and the
   * source's names) are qualified with `defaultdomain`, which is how Courier keys `aliases.dat`.
   */
  async getAlias(address: string): Promise<string[] | undefined> {
    const domain = await this.defaultDomain();
    const key = (address.includes('@') ? address : `${address}@${domain}`).toLowerCase();
    return parseAliases(await this.aliasTexts.get(), domain).get(key);
  }

  /** The most specific smtpaccess entry for an IP address, or undefined. */
  async smtpAccess(ip: string): Promise<SmtpAccessEntry | undefined> {
    const table = await this.smtpAccessTable.get();
    for (const key of accessLookupKeys(ip)) {
      const value = table.get(key);
      if (value !== undefined) return { key, value };
    }
    return undefined;
  }

  /** One variable of the IP's smtpaccess entry: undefined (absent), `''` (set, empty) or its value. */
  async getSmtpAccessValue(name: string, ip: string): Promise<string | undefined> {
    const entry = await this.smtpAccess(ip);
    return entry ? accessVariable(entry.value, name) : undefined;
  }

  /** Whether smtpaccess sets RELAYCLIENT for this IP. */
  async isRelayed(ip: string): Promise<boolean> {
    return (await this.getSmtpAccessValue('RELAYCLIENT', ip)) !== undefined;
  }

  /** The BLOCK value for this IP (undefined or `''` mean not blocked). */
  async getBlockValue(ip: string): Promise<string | undefined> {
    return this.getSmtpAccessValue('BLOCK', ip);
  }

  /** Whether smtpaccess exempts this IP from blocks (an empty BLOCK). */
  async isWhiteblocked(ip: string): Promise<boolean> {
    return (await this.getBlockValue(ip)) === '';
  }

  /** Courier's version from `courier --version` (cached), or undefined when unknown. */
  async version(): Promise<string | undefined> {
    this.versionPromise ??= spawnWithoutReadyFd(join(this.dirs.sbindir, 'courier'), ['--version'], { timeoutMs: 5000 })
      .then((out) => /Courier\s+(\d[\w.]*)/.exec(out.stdout)?.[1])
      .catch(() => undefined);
    return this.versionPromise;
  }

  /** Whether the installed Courier is at least `minimum` (compared numerically). False if unknown. */
  async isMinVersion(minimum: string): Promise<boolean> {
    const current = await this.version();
    return current !== undefined && compareVersions(current, minimum) >= 0;
  }
}
