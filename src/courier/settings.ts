/**
 * The daemon's configuration file: YAML or JSON (never evaluated code). It lists the filter
 * modules in order, with pythonfilter's `for` bypass, per-module options and failure policy.
 *
 * ```yaml
 * modules:
 *   - whitelist_auth for attachments      # pythonfilter's one-line form
 *   - module: attachments
 *     options: { blockedPattern: '\.(exe|scr|js)$' }
 *     onError: tempfail                   # continue | tempfail | reject
 *     timeout: 10                         # seconds
 *   - module: ./local/my-filter.js        # relative to this file
 *     testing: true                       # log the verdict, do not apply it
 * ```
 *
 * @packageDocumentation
 */
import { readFile, stat } from 'node:fs/promises';
import { dirname, isAbsolute } from 'node:path';
import { parseDocument } from 'yaml';
import type { LoadedModule } from './module-loader.js';
import type { CourierDirectories } from './paths.js';

/** What happens to a message when a module throws, times out or answers nonsense. */
export type FailureOutcome = 'continue' | 'tempfail' | 'reject';
const FAILURE_OUTCOMES: readonly FailureOutcome[] = ['continue', 'tempfail', 'reject'];

/** Which socket directory Courier consults: `allfilters` (every message) or `filters`. */
export type SocketDirectory = 'allfilters' | 'filters';

/** One entry of the module chain. */
export interface ModuleSettings {
  /** Built-in name (`attachments`), a path (relative to the config file) or a package name. */
  readonly module: string;
  /** Name used in logs and `for` lists (default: the module's file name without extension). */
  readonly name: string;
  /** pythonfilter's bypass: when this module accepts (2xx), skip these modules and go on. */
  readonly for: readonly string[];
  /** Options handed to the module. */
  readonly options: Readonly<Record<string, unknown>>;
  /** Skip this module for messages from authenticated (SMTP AUTH) senders. */
  readonly trusting: boolean;
  /** Log this module's verdict but never apply it. */
  readonly testing: boolean;
  /** Seconds this module may take per message. */
  readonly timeout: number;
  readonly onError: FailureOutcome;
  readonly onTimeout: FailureOutcome;
  /**
   * Makes the module in code instead of importing `module` (a whole chain of the filter API, from
   * a configuration in that API's format). Called at every load of the chain, so that a reload
   * gets a fresh module.
   */
  readonly create?: () => LoadedModule;
}

/** Replies the daemon itself gives. */
export interface DaemonReplies {
  readonly accept: string;
  readonly tempfail: string;
  readonly reject: string;
  readonly busy: string;
}

/** The whole configuration, defaults applied. */
export interface DaemonSettings {
  /** Socket name override (default: the name courierfilter started us under). */
  readonly name?: string;
  readonly socketDirectory?: SocketDirectory;
  readonly maxConnections: number;
  /** Seconds for the whole chain on one message. */
  readonly messageTimeout: number;
  /** Seconds to read a request after a connection opens (Courier sends it at once). */
  readonly requestTimeout: number;
  /** Seconds to let in-flight messages finish after stdin EOF. */
  readonly shutdownTimeout: number;
  /** Accept messages from authenticated senders without running any module. */
  readonly trusting: boolean;
  /** Run everything and log, but always accept. */
  readonly testing: boolean;
  readonly logLevel: string;
  readonly replies: DaemonReplies;
  /** Overrides for Courier's directories (tests, unusual builds). */
  readonly courier: Partial<CourierDirectories> & { readonly configCommand?: string };
  readonly modules: readonly ModuleSettings[];
  /** Directory of the configuration file (relative module paths start here). */
  readonly baseDirectory: string;
}

/** Thrown for a configuration that cannot be used; the message says where and why. */
export class SettingsError extends Error {
  override name = 'SettingsError';
}

export const DEFAULT_REPLIES: DaemonReplies = {
  accept: '200 Ok',
  tempfail: '451 4.3.0 Mail filter temporarily unavailable, please try again later',
  reject: '554 5.7.1 Message refused by mail filter',
  busy: '451 4.3.2 Mail filter busy, please try again later',
};

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function read<T>(object: Json, key: string, where: string, check: (v: unknown) => v is T, expected: string, fallback: T): T {
  const value = object[key];
  if (value === undefined || value === null) return fallback;
  if (!check(value)) throw new SettingsError(`${where}.${key}: expected ${expected}, got ${JSON.stringify(value)}`);
  return value;
}

const isBoolean = (v: unknown): v is boolean => typeof v === 'boolean';
const isString = (v: unknown): v is string => typeof v === 'string';
const isPositive = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v > 0;
const isPositiveInteger = (v: unknown): v is number => isPositive(v) && Number.isInteger(v);
const isOutcome = (v: unknown): v is FailureOutcome => FAILURE_OUTCOMES.includes(v as FailureOutcome);
const isStringList = (v: unknown): v is string[] => Array.isArray(v) && v.every(isString);
const isSocketDirectory = (v: unknown): v is SocketDirectory => v === 'allfilters' || v === 'filters';

function defaultModuleName(module: string): string {
  const base = module.split(/[\\/]/).pop() ?? module;
  return base.replace(/\.(m?js|ts)$/, '');
}

const MODULE_KEYS = new Set(['module', 'name', 'for', 'options', 'trusting', 'testing', 'timeout', 'onError', 'onTimeout']);

function moduleSettings(entry: unknown, index: number, defaults: { timeout: number; onError: FailureOutcome; onTimeout: FailureOutcome }): ModuleSettings {
  const where = `modules[${index}]`;
  if (typeof entry === 'string') {
    // pythonfilter's line form: "MODULE" or "MODULE for A B C".
    const [module, keyword, ...bypass] = entry.trim().split(/\s+/);
    if (!module || (keyword !== undefined && keyword !== 'for') || (keyword === 'for' && bypass.length === 0)) {
      throw new SettingsError(`${where}: expected "module" or "module for other1 other2", got ${JSON.stringify(entry)}`);
    }
    return { module, name: defaultModuleName(module), for: bypass, options: {}, trusting: false, testing: false, ...defaults };
  }
  if (!isObject(entry)) throw new SettingsError(`${where}: expected a string or an object`);
  for (const key of Object.keys(entry)) {
    if (!MODULE_KEYS.has(key)) throw new SettingsError(`${where}: unknown key "${key}"`);
  }
  const module = read(entry, 'module', where, isString, 'a string', '');
  if (!module) throw new SettingsError(`${where}.module: required`);
  const bypass = entry.for;
  return {
    module,
    name: read(entry, 'name', where, isString, 'a string', defaultModuleName(module)),
    for: typeof bypass === 'string' ? bypass.split(/\s+/).filter(Boolean) : read(entry, 'for', where, isStringList, 'a list of module names', []),
    options: read(entry, 'options', where, isObject, 'a mapping', {}),
    trusting: read(entry, 'trusting', where, isBoolean, 'true or false', false),
    testing: read(entry, 'testing', where, isBoolean, 'true or false', false),
    timeout: read(entry, 'timeout', where, isPositive, 'a positive number of seconds', defaults.timeout),
    onError: read(entry, 'onError', where, isOutcome, 'continue, tempfail or reject', defaults.onError),
    onTimeout: read(entry, 'onTimeout', where, isOutcome, 'continue, tempfail or reject', defaults.onTimeout),
  };
}

const TOP_KEYS = new Set([
  'name', 'socketDirectory', 'maxConnections', 'messageTimeout', 'moduleTimeout', 'requestTimeout', 'shutdownTimeout',
  'trusting', 'testing', 'logLevel', 'onError', 'onTimeout', 'replies', 'courier', 'modules',
]);
const COURIER_KEYS = new Set(['prefix', 'bindir', 'sbindir', 'libexecdir', 'sysconfdir', 'localstatedir', 'mailuser', 'mailgroup', 'configCommand']);

/** Validates a parsed configuration object and applies defaults. */
export function settingsFromObject(raw: unknown, baseDirectory: string): DaemonSettings {
  const object = raw ?? {};
  if (!isObject(object)) throw new SettingsError('configuration: expected a mapping at the top level');
  for (const key of Object.keys(object)) {
    if (!TOP_KEYS.has(key)) throw new SettingsError(`configuration: unknown key "${key}"`);
  }
  const where = 'configuration';
  const defaults = {
    timeout: read(object, 'moduleTimeout', where, isPositive, 'a positive number of seconds', 30),
    onError: read(object, 'onError', where, isOutcome, 'continue, tempfail or reject', 'tempfail' as FailureOutcome),
    onTimeout: read(object, 'onTimeout', where, isOutcome, 'continue, tempfail or reject', 'tempfail' as FailureOutcome),
  };
  const replies = read(object, 'replies', where, isObject, 'a mapping', {});
  for (const [key, value] of Object.entries(replies)) {
    if (!(key in DEFAULT_REPLIES) || !isString(value) || !/^\d{3} /.test(value)) {
      throw new SettingsError(`configuration.replies.${key}: expected one of ${Object.keys(DEFAULT_REPLIES).join(', ')} with a "NNN text" reply`);
    }
  }
  const courier = read(object, 'courier', where, isObject, 'a mapping', {});
  for (const [key, value] of Object.entries(courier)) {
    if (!COURIER_KEYS.has(key) || !isString(value)) throw new SettingsError(`configuration.courier.${key}: unknown key or not a string`);
  }
  const modules = read(object, 'modules', where, Array.isArray, 'a list', [] as unknown[]);
  const chain = modules.map((entry, index) => moduleSettings(entry, index, defaults));
  const names = new Set<string>();
  for (const entry of chain) {
    if (names.has(entry.name)) throw new SettingsError(`modules: the name "${entry.name}" is used twice (give one a "name")`);
    names.add(entry.name);
  }
  for (const entry of chain) {
    for (const other of entry.for) {
      if (!names.has(other)) throw new SettingsError(`modules: "${entry.name} for ${other}" names no module in the chain`);
    }
  }
  return {
    name: read(object, 'name', where, isString, 'a string', undefined as string | undefined),
    socketDirectory: read(object, 'socketDirectory', where, isSocketDirectory, 'allfilters or filters', undefined as SocketDirectory | undefined),
    maxConnections: read(object, 'maxConnections', where, isPositiveInteger, 'a positive integer', 64),
    messageTimeout: read(object, 'messageTimeout', where, isPositive, 'a positive number of seconds', 120),
    requestTimeout: read(object, 'requestTimeout', where, isPositive, 'a positive number of seconds', 5),
    shutdownTimeout: read(object, 'shutdownTimeout', where, isPositive, 'a positive number of seconds', 10),
    trusting: read(object, 'trusting', where, isBoolean, 'true or false', false),
    testing: read(object, 'testing', where, isBoolean, 'true or false', false),
    logLevel: read(object, 'logLevel', where, isString, 'a string', 'info'),
    replies: { ...DEFAULT_REPLIES, ...(replies as Partial<DaemonReplies>) },
    courier: courier as DaemonSettings['courier'],
    modules: chain,
    baseDirectory,
  };
}

/** Parses YAML or JSON text (JSON is YAML) into settings. */
export function parseSettings(text: string, baseDirectory: string, source = 'configuration'): DaemonSettings {
  // Plain data only: custom tags (`!!js/function` and the like) are refused, not resolved.
  const document = parseDocument(text, { logLevel: 'silent' });
  const problem = document.errors[0] ?? document.warnings[0];
  if (problem) throw new SettingsError(`${source}: not valid YAML/JSON: ${problem.message.split('\n')[0]}`);
  let data: unknown;
  try {
    data = document.toJS({ maxAliasCount: 100 });
  } catch (error) {
    // An alias without its anchor, or too many aliases, is only found while converting.
    throw new SettingsError(`${source}: not valid YAML/JSON: ${(error as Error).message.split('\n')[0]}`);
  }
  return settingsFromObject(data, baseDirectory);
}

/**
 * Reads and validates a configuration file in the daemon's `modules:` format; see
 * {@link checkConfigurationTrust} for files others may write.
 */
export async function loadSettings(path: string, options: { onWarning?: (message: string) => void } = {}): Promise<DaemonSettings> {
  const settings = parseSettings(await readFile(path, 'utf8'), dirname(path), path);
  await checkConfigurationTrust(path, settings, options);
  return settings;
}

/**
 * A file that users other than its owner may write is still used, with a warning: whoever can
 * write it chooses the modules (code) the daemon runs. `courier.configCommand` (a program the
 * daemon runs at start) must be an absolute path, and is refused from such a file.
 */
export async function checkConfigurationTrust(path: string, settings: DaemonSettings, options: { onWarning?: (message: string) => void } = {}): Promise<void> {
  const info = await stat(path);
  const writableByOthers = (info.mode & 0o022) !== 0;
  if (writableByOthers) {
    options.onWarning?.(`${path} is writable by users other than its owner (mode ${(info.mode & 0o777).toString(8)}); they can choose the code this daemon runs`);
  }
  const command = settings.courier.configCommand;
  if (command !== undefined) {
    if (!isAbsolute(command)) throw new SettingsError(`${path}: courier.configCommand must be an absolute path, got ${JSON.stringify(command)}`);
    if (writableByOthers) throw new SettingsError(`${path}: courier.configCommand is refused from a file others may write`);
  }
}
