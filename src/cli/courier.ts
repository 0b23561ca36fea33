/**
 * Command line of the Courier global filter daemon (`milterkit courier …` and the standalone
 * `milterkit-courier` executable that Courier's filters directory links to).
 *
 * @packageDocumentation
 */
import { access, readFile, realpath } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { FilterChain } from '../courier/chain.js';
import { AlreadyRunningError, CourierFilterDaemon } from '../courier/daemon.js';
import { CourierConfig } from '../courier/helpers/config.js';
import type { CourierLogger } from '../courier/logging.js';
import { createLogger } from './logger.js';
import { keepYoungGenerationSmall } from '../server/heap.js';
import { ExitStatus } from './exit-status.js';
import { discoverCourierDirectories, type CourierDirectories } from '../courier/paths.js';
import { closeReadyFd, hasReadyFd } from '../courier/ready-fd.js';
import { formatReply, parseModuleReply, type FilterReply } from '../courier/reply.js';
import type { FilterRequest } from '../courier/request.js';
import { SettingsError, settingsFromObject, type DaemonSettings, type SocketDirectory } from '../courier/settings.js';
import { loadCourierChain, loadCourierSettings } from './courier-settings.js';

const USAGE = `Usage:
  milterkit-courier [options]                        run as a Courier global filter (started by courierfilter)
  milterkit-courier check [options] DATA CONTROL...  run the module chain once on saved files, print the reply
                                                     (modules that edit messages do edit these files)

Options:
  --config FILE         configuration (YAML or JSON): the chain format of serve --config, or modules:;
                        default: SYSCONFDIR/filters/NAME.yaml, .yml or .json
  --name NAME           socket name; default: the name courierfilter started this program under
  --socket-dir DIR      allfilters (every message, the default) or filters (non-whitelisted messages)
  --localstatedir DIR   Courier's localstatedir (default: from courier-config)
  --sysconfdir DIR      Courier's sysconfdir (default: from courier-config)
  --courier-config CMD  the courier-config program to ask for directories
  --ignore-stdin        do not stop on stdin EOF (for running outside courierfilter)
  --log-level LEVEL     debug, info, warn or error
  -h, --help            this text
`;

const OPTIONS = {
  config: { type: 'string' },
  name: { type: 'string' },
  'socket-dir': { type: 'string' },
  localstatedir: { type: 'string' },
  sysconfdir: { type: 'string' },
  'courier-config': { type: 'string' },
  'ignore-stdin': { type: 'boolean' },
  'log-level': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

type Flags = {
  config?: string;
  name?: string;
  'socket-dir'?: string;
  localstatedir?: string;
  sysconfdir?: string;
  'courier-config'?: string;
  'ignore-stdin'?: boolean;
  'log-level'?: string;
  help?: boolean;
};

/** The name courierfilter started us under: the basename of the active link (argv[1] for a script). */
export function nameFromInvocation(scriptPath: string | undefined): string {
  const base = scriptPath ? basename(scriptPath) : '';
  return base && !/\.(m?js|ts)$/.test(base) ? base : 'milterkit';
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

async function defaultConfigPath(sysconfdir: string, name: string): Promise<string | undefined> {
  for (const extension of ['yaml', 'yml', 'json']) {
    const candidate = join(sysconfdir, 'filters', `${name}.${extension}`);
    if (await exists(candidate)) return candidate;
  }
  return undefined;
}

/** Courier's convention for its own filters: `filters/NAME-mode` containing `all` selects allfilters. */
async function socketDirectoryFromModeFile(sysconfdir: string, name: string): Promise<SocketDirectory | undefined> {
  const text = await readFile(join(sysconfdir, 'filters', `${name}-mode`), 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  return text.trim() === 'all' ? 'allfilters' : 'filters';
}

function socketDirectoryFlag(value: string | undefined): SocketDirectory | undefined {
  if (value === undefined) return undefined;
  if (value === 'allfilters' || value === 'filters') return value;
  throw new SettingsError(`--socket-dir: expected allfilters or filters, got ${value}`);
}

interface Prepared {
  name: string;
  settings: DaemonSettings | undefined;
  settingsError: Error | undefined;
  configPath: string | undefined;
  directories: CourierDirectories;
  logger: CourierLogger;
}

/** Settings, directories and logger from flags, the configuration file and courier-config. */
async function prepare(flags: Flags): Promise<Prepared> {
  const name = flags.name ?? nameFromInvocation(process.argv[1]);
  const cliDirectories: Partial<CourierDirectories> = {
    ...(flags.localstatedir ? { localstatedir: resolve(flags.localstatedir) } : {}),
    ...(flags.sysconfdir ? { sysconfdir: resolve(flags.sysconfdir) } : {}),
  };
  let settings: DaemonSettings | undefined;
  let settingsError: Error | undefined;
  let configPath = flags.config ? resolve(flags.config) : undefined;
  const early = await discoverCourierDirectories({ overrides: cliDirectories, command: flags['courier-config'] });
  configPath ??= await defaultConfigPath(early.directories.sysconfdir, name);
  const warnings: string[] = [];
  try {
    settings = configPath ? await loadCourierSettings(configPath, { onWarning: (message) => warnings.push(message) }) : undefined;
    if (!settings) throw new SettingsError(`no configuration file (looked for ${join(early.directories.sysconfdir, 'filters', name)}.yaml, .yml, .json)`);
  } catch (error) {
    settingsError = error instanceof Error ? error : new Error(String(error));
  }
  const fromSettings = settings?.courier ?? {};
  const needsRediscovery = fromSettings.configCommand !== undefined && flags['courier-config'] === undefined;
  const discovered = needsRediscovery
    ? (await discoverCourierDirectories({ overrides: cliDirectories, command: fromSettings.configCommand })).directories
    : early.directories;
  const { configCommand: _ignored, ...directoryOverrides } = fromSettings;
  const directories = { ...discovered, ...directoryOverrides, ...cliDirectories };
  const logger = createLogger({ name: settings?.name ?? name, level: flags['log-level'] ?? settings?.logLevel ?? 'info', fd: 2, timestamp: false });
  for (const warning of warnings) logger.warn({ event: 'config-warning', config: configPath }, warning);
  return { name: settings?.name ?? name, settings, settingsError, configPath, directories, logger };
}

/** The daemon: socket up and fd 3 closed first, then modules, then serve until stdin EOF. */
async function runDaemon(flags: Flags, startedByCourier: boolean): Promise<number> {
  let prepared: Prepared;
  try {
    prepared = await prepare(flags);
  } catch (error) {
    if (startedByCourier) closeReadyFd();
    process.stderr.write(`milterkit-courier: ${(error as Error).message}\n`);
    return ExitStatus.FAILURE;
  }
  const { name, settings, settingsError, directories, logger } = prepared;
  const effective = settings ?? settingsFromObject({}, process.cwd());
  if (settingsError) {
    logger.error(
      { event: 'config-error', err: settingsError, config: prepared.configPath },
      `configuration unusable, every message gets "${effective.replies.tempfail}": ${settingsError.message}`,
    );
  }

  let socketDirectory: SocketDirectory;
  try {
    socketDirectory =
      socketDirectoryFlag(flags['socket-dir']) ??
      effective.socketDirectory ??
      (await socketDirectoryFromModeFile(directories.sysconfdir, name)) ??
      'allfilters';
  } catch (error) {
    logger.error({ event: 'config-error', err: error }, (error as Error).message);
    if (startedByCourier) closeReadyFd();
    return ExitStatus.USAGE;
  }

  // From here the process only serves Courier's requests, a connection each, as `milterkit serve` does.
  keepYoungGenerationSmall();
  const courier = new CourierConfig(directories);
  let chain: Promise<FilterChain | undefined> = Promise.resolve(undefined);
  const tempfail = parseModuleReply(effective.replies.tempfail)!;
  const handler = async (request: FilterRequest): Promise<FilterReply> => {
    const ready = await chain;
    if (!ready) {
      logger.error({ event: 'message', request, reply: effective.replies.tempfail }, `no usable configuration: ${settingsError?.message}`);
      return tempfail;
    }
    return ready.filter(request);
  };
  const daemon = new CourierFilterDaemon({
    name,
    localstatedir: directories.localstatedir,
    socketDirectory,
    handler,
    logger,
    maxConnections: effective.maxConnections,
    requestTimeoutMs: effective.requestTimeout * 1000,
    shutdownTimeoutMs: effective.shutdownTimeout * 1000,
    errorReply: effective.replies.tempfail,
    busyReply: effective.replies.busy,
    stopOn: flags['ignore-stdin'] ? undefined : process.stdin,
    closeReadyFd: startedByCourier,
  });
  try {
    await daemon.start();
  } catch (error) {
    const message = (error as Error).message;
    logger.error({ event: 'start-failed', err: error }, `cannot start: ${message}`);
    if (startedByCourier) closeReadyFd();
    return error instanceof AlreadyRunningError ? ExitStatus.ALREADY_RUNNING : ExitStatus.FAILURE;
  }
  // Modules load only now: the socket already answers (messages wait for the chain), and fd 3
  // is closed, so modules may start child processes.
  if (settings) chain = loadCourierChain(settings, courier, logger);

  // A crashed filter is never restarted by courierfilter and its socket then makes Courier
  // answer 432 for all mail; an error that escaped a module is logged and the daemon goes on.
  process.on('uncaughtException', (error) => logger.error({ event: 'uncaught', err: error }, `uncaught exception: ${error.message}`));
  process.on('unhandledRejection', (reason) => logger.error({ event: 'uncaught', err: reason }, `unhandled rejection: ${String(reason)}`));

  const stop = (signal: string) => void daemon.stop(`signal ${signal}`);
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  process.on('SIGHUP', () => {
    if (!prepared.configPath) return;
    void reload(prepared.configPath, courier, logger).then((next) => {
      if (!next) return;
      const replaced = chain;
      chain = Promise.resolve(next);
      // The old chain's modules release what they opened once its messages in flight are done.
      void replaced.then((old) => old?.close());
    });
  });
  await daemon.stopped;
  // The daemon has drained (or cut off, after shutdownTimeout) its messages already.
  await (await chain)?.close(0);
  return ExitStatus.OK;
}

/** Re-reads the configuration and reloads the chain; keeps the old one when the new one is unusable. */
async function reload(configPath: string, courier: CourierConfig, logger: CourierLogger): Promise<FilterChain | undefined> {
  try {
    const settings = await loadCourierSettings(configPath, { onWarning: (message) => logger.warn({ event: 'config-warning', config: configPath }, message) });
    const next = await loadCourierChain(settings, courier, logger);
    logger.info({ event: 'reloaded', modules: next.moduleNames }, `reloaded ${configPath}`);
    return next;
  } catch (error) {
    logger.error({ event: 'reload-failed', err: error }, `reload failed, keeping the running configuration: ${(error as Error).message}`);
    return undefined;
  }
}

/** `check`: the chain once on saved files. */
async function runCheck(flags: Flags, files: string[]): Promise<number> {
  if (files.length < 2) {
    process.stderr.write(USAGE);
    return ExitStatus.USAGE;
  }
  const prepared = await prepare(flags);
  if (!prepared.settings) {
    process.stderr.write(`milterkit-courier: ${prepared.settingsError?.message}\n`);
    return ExitStatus.USAGE;
  }
  const chain = await loadCourierChain(prepared.settings, new CourierConfig(prepared.directories), prepared.logger);
  // The helpers never follow a final symlink, so saved files given through links are resolved here.
  const [dataPath, ...controlPaths] = await Promise.all(files.map((f) => realpath(resolve(f)).catch(() => resolve(f))));
  process.stdout.write(formatReply(await chain.filter({ dataPath: dataPath!, controlPaths })));
  await chain.close();
  return ExitStatus.OK;
}

/**
 * Entry point of `milterkit courier …` and of the standalone executable.
 *
 * @param argv the arguments after the program (and subcommand) name
 * @returns the process exit code
 */
export async function courierMain(argv: string[]): Promise<number> {
  // Decided before anything can open a descriptor that lands on fd 3.
  const startedByCourier = hasReadyFd();
  let parsed: ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true; args: string[] }>>;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true });
  } catch (error) {
    if (startedByCourier) closeReadyFd();
    process.stderr.write(`milterkit-courier: ${(error as Error).message}\n${USAGE}`);
    return ExitStatus.USAGE;
  }
  const flags = parsed.values as Flags;
  const [command, ...rest] = parsed.positionals;
  if (flags.help) {
    process.stdout.write(USAGE);
    return ExitStatus.OK;
  }
  if (command === 'check') return runCheck(flags, rest);
  if (command !== undefined) {
    if (startedByCourier) closeReadyFd();
    process.stderr.write(`milterkit-courier: unknown command ${command}\n${USAGE}`);
    return ExitStatus.USAGE;
  }
  return runDaemon(flags, startedByCourier);
}

