/** `milterkit serve <filter-module>` or `milterkit serve --config FILE`: a milter daemon. Its options: `../serve-options.ts`. */
import cluster from 'node:cluster';
import { parseArgs } from 'node:util';
import { MilterServer } from '../../server/server.js';
import { keepYoungGenerationSmall } from '../../server/heap.js';
import { resolveServerOptions, SERVER_DEFAULTS } from '../../server/options.js';
import { SocketSpecError } from '../../net/socket-spec.js';
import { InvalidOptionError } from '../../validate.js';
import { isClusterWorker } from '../../server/cluster.js';
import { milterFilterOf } from '../../frontends/load.js';
import { ReloadableChain } from '../../frontends/reloadable.js';
import { startChain } from '../../filter-api/config.js';
import { loadConfiguration, reloadChain } from '../chain-config.js';
import { ExitStatus, UsageError } from '../exit-status.js';
import { loadFilter } from '../load-filter.js';
import { createLogger } from '../logger.js';
import { defaultWorkers, describeWorkers, flagOf, serveArgsConfig, serveHelp, serveSettings, type ServeSettings } from '../serve-options.js';

/** Runs the command; resolves to the exit status once the server has stopped. */
export async function run(argv: string[]): Promise<number> {
  let filterPath: string | undefined;
  let settings: ServeSettings;
  try {
    const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: serveArgsConfig() });
    if (values.help === true) {
      process.stdout.write(serveHelp());
      return ExitStatus.OK;
    }
    settings = serveSettings(values as Record<string, string | boolean | undefined>);
    const expected = settings.config === undefined ? 1 : 0;
    if (positionals.length !== expected) throw new UsageError(expected === 1 ? `expected one filter module, got ${positionals.length} arguments` : 'a filter module and --config exclude each other');
    filterPath = positionals[0];
  } catch (error) {
    return usageFailure(error);
  }
  const { logLevel, config, socket, ...serverSettings } = settings;
  const configuration = config === undefined ? undefined : await loadConfiguration(config);
  // The configuration file's settings apply unless given on the command line.
  const fromFile: Partial<ServeSettings> = {};
  if (configuration?.socketMode !== undefined) fromFile.socketMode = configuration.socketMode;
  if (configuration?.maxConnections !== undefined) fromFile.maxConnections = configuration.maxConnections;
  if (configuration?.idleTimeout !== undefined) fromFile.idleTimeout = configuration.idleTimeout;
  const workersChosen = serverSettings.workers !== undefined;
  const options = { ...fromFile, ...serverSettings, workers: serverSettings.workers ?? defaultWorkers() };
  const sockets = socket !== undefined ? [socket] : configuration?.listen.length ? configuration.listen : [SERVER_DEFAULTS.socket];
  try {
    // Every option is checked here, before the filter is loaded and anything listens.
    for (const spec of sockets) resolveServerOptions({ ...options, socket: spec });
  } catch (error) {
    return usageFailure(error);
  }
  const logger = createLogger({ name: 'milterkit', level: logLevel ?? configuration?.logLevel ?? 'info' });
  const chain = configuration === undefined ? undefined : new ReloadableChain(await startChain(configuration, logger));
  const filter = chain ?? (await milterFilterOf(await loadFilter(filterPath!), logger));
  // This process (and each worker process, which runs this command too) only serves connections.
  keepYoungGenerationSmall();
  const servers = sockets.map((spec) => new MilterServer({ filter, ...options, socket: spec, logger }));
  const what = config ?? filterPath!;
  const reload = (): void => {
    // Worker processes each run their own chain: pass the signal on.
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGHUP');
    if (chain !== undefined && config !== undefined) void reloadChain(config, chain, logger);
  };
  // The stop signals are handled before the first listen and before the start-up line, so a
  // supervisor that stops the daemon as soon as it has started still gets a clean close.
  let stopping = false;
  const stopped = new Promise<void>((resolve) => {
    const stop = (signal: string): void => {
      stopping = true;
      logger.info({ event: 'stopping', signal }, 'stopping: waiting for sessions in flight');
      process.off('SIGHUP', reload);
      void listening
        .catch(() => undefined)
        .then(() => Promise.all(servers.map((server) => server.close())))
        .then(() => chain?.close())
        .then(resolve);
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
  const listening = (async () => {
    for (const server of servers) {
      if (stopping) return;
      const where = await server.listen();
      if (!isClusterWorker()) process.stdout.write(`milterkit: ${what} listening on ${where} ${describeWorkers(options.workers, workersChosen)}\n`);
    }
  })();
  await listening;
  if (config !== undefined) process.on('SIGHUP', reload);
  await stopped;
  return ExitStatus.OK;
}

/** Prints a command-line problem with the usage text; other errors go on to the caller. */
function usageFailure(error: unknown): number {
  let message: string;
  if (error instanceof InvalidOptionError) message = error.message.replace(error.option, flagOf(error.option) ?? error.option);
  else if (error instanceof UsageError || error instanceof SocketSpecError) message = error.message;
  else if (error instanceof TypeError && (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) message = error.message;
  else throw error;
  process.stderr.write(`milterkit serve: ${message}\n\n${serveHelp()}`);
  return ExitStatus.USAGE;
}
