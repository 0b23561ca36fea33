/**
 * The options of `milterkit serve`, as one table: the parser, the `--help` text and
 * docs/options.md are all generated from it, and the defaults shown come from the constants the
 * server and session use, so the three never disagree.
 */
import { availableParallelism } from 'node:os';
import type { ParseArgsConfig } from 'node:util';
import { ERROR_VERDICTS, SESSION_DEFAULTS } from '../milter/session-options.js';
import { SERVER_DEFAULTS, type ServerOptions } from '../server/options.js';
import { InvalidOptionError } from '../validate.js';
import { UsageError } from './exit-status.js';
import { LOG_LEVELS } from './logger.js';

/** What `serve` takes besides the filter: the server's options and the command's own. */
export type ServeSettings = Omit<ServerOptions, 'filter' | 'logger'> & { logLevel?: string; config?: string };

/** One option of `milterkit serve`. */
interface ServeOption {
  /** Flag without the dashes. */
  flag: string;
  /** Placeholder of the value in the help text; absent for a switch. */
  value?: string;
  /** The setting it fills. */
  key: keyof ServeSettings;
  /** What it does, one line. */
  help: string;
  /** The default, as written on the command line. */
  default: string;
  /** The value from its text. @throws InvalidOptionError */
  parse?: (text: string, flag: string) => number | string;
}

const SECOND_MS = 1000;

function integer(text: string, flag: string): number {
  if (!/^[0-9]+$/.test(text)) throw new InvalidOptionError(flag, `expected a whole number, got ${JSON.stringify(text)}`);
  return Number(text);
}

function seconds(text: string, flag: string): number {
  if (!/^[0-9]+(\.[0-9]+)?$/.test(text)) throw new InvalidOptionError(flag, `expected a number of seconds, got ${JSON.stringify(text)}`);
  return Math.round(Number(text) * SECOND_MS);
}

function octalMode(text: string, flag: string): number {
  if (!/^0?[0-7]{1,3}$/.test(text)) throw new InvalidOptionError(flag, `expected an octal mode from 0 to 777, got ${JSON.stringify(text)}`);
  return parseInt(text, 8);
}

function choice(choices: readonly string[]): (text: string, flag: string) => string {
  return (text, flag) => {
    if (!choices.includes(text)) throw new InvalidOptionError(flag, `expected one of ${choices.join(', ')}, got ${JSON.stringify(text)}`);
    return text;
  };
}

const inSeconds = (ms: number): string => String(ms / SECOND_MS);

/** Worker processes `serve` starts unasked at most: past a few cores, memory grows faster than mail. */
const MAX_DEFAULT_WORKERS = 8;

/**
 * The `--workers` default of `serve`: one process per CPU (at most {@link MAX_DEFAULT_WORKERS}),
 * as one process keeps at most one core busy; with one CPU, this process serves alone.
 */
export function defaultWorkers(cpus: number = availableParallelism()): number {
  return cpus < 2 ? 0 : Math.min(cpus, MAX_DEFAULT_WORKERS);
}

/** How `serve` says where connections are served, for its start-up line. */
export function describeWorkers(workers: number, chosen: boolean): string {
  const how = chosen ? '--workers' : `default: one per CPU, at most ${MAX_DEFAULT_WORKERS}; --workers N to choose`;
  return workers === 0 ? `in this process (${how})` : `with ${workers} worker processes (${how})`;
}

/** Every option of `milterkit serve`, in help order. */
export const SERVE_OPTIONS: readonly ServeOption[] = [
  {
    flag: 'config',
    value: 'FILE',
    key: 'config',
    default: 'none',
    parse: (text) => text,
    help: 'run the filter chain of a configuration file (YAML or JSON) instead of a filter module; its listen, limits and logging settings apply unless given here; SIGHUP reloads it, keeping the running chain if the new file is bad',
  },
  { flag: 'socket', value: 'SPEC', key: 'socket', default: SERVER_DEFAULTS.socket, parse: (text) => text, help: 'where to listen: unix:/path, local:/path, inet:port@host, inet6:port@[::1], inet:host:port' },
  { flag: 'socket-mode', value: 'MODE', key: 'socketMode', default: SERVER_DEFAULTS.socketMode.toString(8), parse: octalMode, help: 'octal permissions of a unix socket, set when it is created' },
  { flag: 'max-connections', value: 'N', key: 'maxConnections', default: String(SERVER_DEFAULTS.maxConnections), parse: integer, help: 'connections served at once; at the limit, one not being served makes room or the new one is refused' },
  { flag: 'idle-timeout', value: 'SECONDS', key: 'idleTimeout', default: inSeconds(SERVER_DEFAULTS.idleTimeoutMs), parse: seconds, help: 'close a negotiated connection the MTA leaves silent this long' },
  { flag: 'negotiation-timeout', value: 'SECONDS', key: 'negotiationTimeout', default: inSeconds(SERVER_DEFAULTS.negotiationTimeoutMs), parse: seconds, help: 'close a connection not negotiated this long after connecting' },
  { flag: 'packet-timeout', value: 'SECONDS', key: 'packetTimeout', default: inSeconds(SERVER_DEFAULTS.packetTimeoutMs), parse: seconds, help: 'close a connection whose packet is still incomplete this long after its first byte' },
  { flag: 'max-write-buffer', value: 'BYTES', key: 'maxWriteBuffer', default: String(SERVER_DEFAULTS.maxWriteBuffer), parse: integer, help: 'unread reply bytes at which reading from the MTA pauses' },
  { flag: 'write-stall-timeout', value: 'SECONDS', key: 'writeStallTimeout', default: inSeconds(SERVER_DEFAULTS.writeStallTimeoutMs), parse: seconds, help: 'close a connection whose replies stay unread over that bound this long' },
  { flag: 'callback-timeout', value: 'SECONDS', key: 'callbackTimeout', default: inSeconds(SESSION_DEFAULTS.callbackTimeoutMs), parse: seconds, help: 'a callback taking longer counts as failed' },
  { flag: 'progress-interval', value: 'SECONDS', key: 'progressInterval', default: inSeconds(SESSION_DEFAULTS.progressIntervalMs), parse: seconds, help: 'while eom() runs, tell the MTA to keep waiting this often (0: never)' },
  { flag: 'max-payload', value: 'BYTES', key: 'maxPayload', default: String(SESSION_DEFAULTS.maxPayload), parse: integer, help: 'largest packet accepted from the MTA' },
  { flag: 'error-verdict', value: 'VERDICT', key: 'errorVerdict', default: SESSION_DEFAULTS.errorVerdict, parse: choice(ERROR_VERDICTS), help: `answer to a failed callback: ${ERROR_VERDICTS.join(', ')}` },
  { flag: 'shadow', key: 'shadow', default: 'off', help: 'dry run: log what the filter would reject or change, let all mail through' },
  {
    flag: 'workers',
    value: 'N',
    key: 'workers',
    default: `one per CPU, at most ${MAX_DEFAULT_WORKERS} (0 with one CPU)`,
    parse: integer,
    help: 'serve from N worker processes sharing the socket (0: this process)',
  },
  { flag: 'log-level', value: 'LEVEL', key: 'logLevel', default: 'info', parse: choice(LOG_LEVELS), help: `lowest level logged: ${LOG_LEVELS.join(', ')}` },
];

/** The `parseArgs` configuration of `serve`. */
export function serveArgsConfig(): NonNullable<ParseArgsConfig['options']> {
  const options: NonNullable<ParseArgsConfig['options']> = { help: { type: 'boolean', short: 'h' } };
  for (const option of SERVE_OPTIONS) options[option.flag] = { type: option.value === undefined ? 'boolean' : 'string' };
  return options;
}

/**
 * The settings from parsed flag values.
 * @throws UsageError for a value that cannot be used
 */
export function serveSettings(values: Record<string, string | boolean | undefined>): ServeSettings {
  const settings: Record<string, unknown> = {};
  for (const option of SERVE_OPTIONS) {
    const raw = values[option.flag];
    if (raw === undefined) continue;
    try {
      settings[option.key] = typeof raw === 'boolean' || option.parse === undefined ? raw : option.parse(raw, `--${option.flag}`);
    } catch (error) {
      throw error instanceof InvalidOptionError ? new UsageError(error.message) : error;
    }
  }
  return settings as ServeSettings;
}

/** The command-line spelling of a setting, for messages about a value the server refused. */
export function flagOf(key: string): string | undefined {
  const option = SERVE_OPTIONS.find((o) => o.key === key);
  return option === undefined ? undefined : `--${option.flag}`;
}

/** Help text is wrapped to this many columns. */
const HELP_WIDTH = 100;

/** Splits `text` into lines of at most `width` characters, at spaces. */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line === '' ? word : `${line} ${word}`;
  }
  return [...lines, line];
}

/** `milterkit serve --help`. */
export function serveHelp(): string {
  const left = (o: ServeOption): string => `--${o.flag}${o.value === undefined ? '' : ` ${o.value}`}`;
  const width = Math.max(...SERVE_OPTIONS.map((o) => left(o).length)) + 4;
  const entry = (flags: string, text: string): string =>
    wrap(text, HELP_WIDTH - width)
      .map((line, i) => (i === 0 ? `  ${flags.padEnd(width - 2)}` : ' '.repeat(width)) + line)
      .join('\n');
  const lines = SERVE_OPTIONS.map((o) => entry(left(o), `${o.help} (default ${o.default})`));
  return [
    'usage: milterkit serve <filter-module> [options]',
    '       milterkit serve --config <chain.yaml> [options]',
    '',
    ...lines,
    entry('-h, --help', 'this text'),
    '',
    'exit status: 0 stopped by SIGTERM or SIGINT, 1 cannot start, 64 usage error (nothing started)',
    '',
  ].join('\n');
}

/** The options table of docs/options.md. */
export function serveOptionsMarkdown(): string {
  const rows = SERVE_OPTIONS.map((o) => {
    const key = o.key === 'logLevel' || o.key === 'config' ? '(command line only)' : `\`${o.key}\``;
    return `| \`--${o.flag}${o.value === undefined ? '' : ` ${o.value}`}\` | ${key} | ${o.default} | ${o.help} |`;
  });
  return ['| option | `ServerOptions` key | default | what it does |', '|---|---|---|---|', ...rows].join('\n') + '\n';
}
