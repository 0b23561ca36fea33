/** `milterkit serve <filter-module>`: a milter daemon. */
import { parseArgs } from 'node:util';
import { MilterServer, DEFAULT_SOCKET } from '../../server/server.js';
import type { ErrorVerdict } from '../../milter/session.js';
import { loadFilter } from '../load-filter.js';
import cluster from 'node:cluster';
import { milterFilterOf } from '../../frontends/load.js';
import { ReloadableChain } from '../../frontends/reloadable.js';
import { startChain } from '../../filter-api/config.js';
import { loadConfiguration, reloadChain } from '../chain-config.js';
import { createLogger } from '../logger.js';
import { isClusterWorker } from '../../server/cluster.js';

const help = `usage: milterkit serve <filter-module> [options]
       milterkit serve --config <chain.yaml> [options]

  --config FILE           run the filter chain of a configuration file (YAML or JSON); its
                          listen, limits and logging settings apply unless given here.
                          SIGHUP reloads it; a bad file is logged and the running chain stays

  --socket SPEC           where to listen (default ${DEFAULT_SOCKET}); unix:/path, local:/path,
                          inet:port@host, inet6:port@[::1], inet:host:port
  --socket-mode MODE      octal mode of a unix socket (default 660)
  --max-connections N     connections served at once (default 1000)
  --idle-timeout SECONDS  close a connection idle this long (default 7210)
  --callback-timeout S    a callback taking longer counts as failed (default 300)
  --error-verdict V       answer to a failed callback: tempfail (default), reject, accept, continue
  --shadow                dry run: log what the filter would reject or change, let all mail through
  --workers N             serve from N worker processes sharing the socket (default 0: this process)
  --log-level LEVEL       fatal, error, warn, info (default), debug
`;

const errorVerdicts = new Set(['tempfail', 'reject', 'accept', 'continue']);

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string' },
      socket: { type: 'string' },
      'socket-mode': { type: 'string' },
      'max-connections': { type: 'string' },
      'idle-timeout': { type: 'string' },
      'callback-timeout': { type: 'string' },
      'error-verdict': { type: 'string' },
      'log-level': { type: 'string' },
      workers: { type: 'string' },
      shadow: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help || positionals.length !== (values.config === undefined ? 1 : 0)) {
    process.stdout.write(help);
    return values.help ? 0 : 2;
  }
  const errorVerdict = values['error-verdict'] ?? 'tempfail';
  if (!errorVerdicts.has(errorVerdict)) throw new Error(`--error-verdict must be one of ${[...errorVerdicts].join(', ')}`);
  const configuration = values.config === undefined ? undefined : await loadConfiguration(values.config);
  const logger = createLogger({ name: 'milterkit', level: values['log-level'] ?? configuration?.logLevel ?? 'info' });
  const number = (value: string | undefined, name: string): number | undefined => {
    if (value === undefined) return undefined;
    const n = Number(value);
    if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a non-negative number`);
    return n;
  };
  const chain = configuration === undefined ? undefined : new ReloadableChain(await startChain(configuration, logger));
  const filter = chain ?? (await milterFilterOf(await loadFilter(positionals[0]!), logger));
  const sockets = values.socket !== undefined ? [values.socket] : configuration?.listen.length ? configuration.listen : [DEFAULT_SOCKET];
  const servers = sockets.map(
    (socket) =>
      new MilterServer({
        filter,
        socket,
        socketMode: values['socket-mode'] === undefined ? configuration?.socketMode : parseInt(values['socket-mode'], 8),
        maxConnections: number(values['max-connections'], '--max-connections') ?? configuration?.maxConnections,
        idleTimeout: secondsToMs(number(values['idle-timeout'], '--idle-timeout')) ?? configuration?.idleTimeout,
        callbackTimeout: secondsToMs(number(values['callback-timeout'], '--callback-timeout')),
        errorVerdict: errorVerdict as ErrorVerdict,
        workers: number(values.workers, '--workers'),
        shadow: values.shadow ?? false,
        logger,
      }),
  );
  const what = values.config ?? positionals[0]!;
  for (const server of servers) {
    const where = await server.listen();
    if (!isClusterWorker()) process.stdout.write(`milterkit: ${what} listening on ${where}${values.workers ? ` with ${values.workers} worker processes` : ''}\n`);
  }
  const reload = (): void => {
    // Worker processes each run their own chain: pass the signal on.
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGHUP');
    if (chain !== undefined && values.config !== undefined) void reloadChain(values.config, chain, logger);
  };
  if (values.config !== undefined) process.on('SIGHUP', reload);
  await new Promise<void>((resolve) => {
    const stop = (signal: string): void => {
      logger.info({ signal }, 'stopping: waiting for sessions in flight');
      process.off('SIGHUP', reload);
      void Promise.all(servers.map((server) => server.close()))
        .then(() => chain?.close())
        .then(resolve);
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
  return 0;
}

function secondsToMs(seconds: number | undefined): number | undefined {
  return seconds === undefined ? undefined : seconds * 1000;
}
