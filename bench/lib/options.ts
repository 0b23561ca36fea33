/**
 * The benchmark's dimensions (peers, jobs, transports, cells) and its command line.
 */

/** c-epoll: a minimal C epoll milter, the ceiling of what the harness and the kernel allow. */
export const PEER_NAMES = ['milterkit', 'libmilter', 'pymilter', 'c-epoll'] as const;
export type PeerName = (typeof PEER_NAMES)[number];

export const JOBS = ['noop', 'work'] as const;
/** noop: continue everything; work: add `X-Bench: <body bytes>` at end of message, reject REJECTME. */
export type Job = (typeof JOBS)[number];

export const TRANSPORTS = ['unix', 'tcp'] as const;
export type Transport = (typeof TRANSPORTS)[number];

/** One load shape: how many concurrent connections, how big each body, connection reuse. */
export interface Cell {
  conns: number;
  bodyBytes: number;
  /** A new milter connection for every message (OPTNEG, CONNECT, HELO each time), as non_smtpd_milters do. */
  perMessage: boolean;
}

const KiB = 1024;
const MiB = 1024 * KiB;

export const CELLS: readonly Cell[] = [
  { conns: 1, bodyBytes: 2 * KiB, perMessage: false },
  { conns: 8, bodyBytes: 2 * KiB, perMessage: false },
  { conns: 64, bodyBytes: 2 * KiB, perMessage: false },
  { conns: 1, bodyBytes: MiB, perMessage: false },
  { conns: 8, bodyBytes: MiB, perMessage: false },
  { conns: 64, bodyBytes: MiB, perMessage: false },
  { conns: 8, bodyBytes: 2 * KiB, perMessage: true },
];

/** Short tag of a body size for --only and for tables: "2k", "1m". */
export function bodyTag(bytes: number): string {
  return bytes >= MiB ? `${bytes / MiB}m` : `${bytes / KiB}k`;
}

export interface Options {
  peers: PeerName[];
  jobs: Job[];
  transports: Transport[];
  cells: Cell[];
  /** Seconds of load per cell (ignored when `messages` is set). */
  duration: number;
  /** A fixed message count per cell instead of a duration. */
  messages: number | undefined;
  /** Seconds of unmeasured load before a freshly started peer is measured. */
  warmup: number;
  /** Run the idle-connections test, with this many connections (0 = skip). */
  idleConns: number;
  /** Run the concurrency-models section (CPU-heavy filter). */
  concurrency: boolean;
  /** Run the filter-chain section: the filter API's milter front-end against the protocol core. */
  chain: boolean;
  /** Run the Courier section: the Courier daemon against Courier::Filter. */
  courier: boolean;
  /** Cells of the chain section (the cells chosen by --only's connection and body tokens). */
  sectionCells: Cell[];
  /** Runs of every cell; each peer's fastest correct run is reported. */
  repeat: number;
  install: boolean;
  /** Write a V8 CPU profile of the milterkit milter (node --cpu-prof) for every peer run. */
  profile: boolean;
  quick: boolean;
  /** Re-render the report from a saved latest.json instead of measuring. */
  render: string | undefined;
}

export const USAGE = `usage: npm run bench -- [options]

  --quick             0.5 s per cell and a short warm-up (default: 2 s per cell)
  --only TOKENS       comma-separated subset; tokens of one kind are alternatives, kinds combine:
                        peers: ${PEER_NAMES.join(' ')}      jobs: ${JOBS.join(' ')}
                        transports: ${TRANSPORTS.join(' ')}   conns: 1 8 64   bodies: 2k 1m
                        per-message (the one-connection-per-message cell)
                        idle (the idle test)   concurrency (CPU-heavy filter in each concurrency model)
                        chain (the filter API's chains against the protocol core)
                        courier (the Courier daemon against Courier::Filter)
                      sections run when no --only is given or when they are listed; listed
                      with only conns, body and per-message tokens, only the sections run
  --repeat N          run every cell N times, peers alternating, and keep each peer's fastest
                      correct run (for a busy machine; default 1)
  --duration S        seconds of load per cell
  --messages N        a fixed number of messages per cell instead of a duration
  --idle-conns N      idle connections for the idle test (default 10000)
  --no-install        never run apt-get (peers whose packages are missing are skipped)
  --profile           also write V8 CPU profiles of the milterkit milter to bench/.build/profiles/
  --render FILE       rewrite latest.md from a saved latest.json (no measuring)
  --help              this text
`;

/** A command-line mistake; the message says what was wrong. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

function positiveNumber(flag: string, text: string | undefined): number {
  const value = Number(text);
  if (text === undefined || !Number.isFinite(value) || value <= 0) throw new UsageError(`${flag} needs a positive number`);
  return value;
}

/** Parses `npm run bench -- ...` arguments. Returns undefined for --help. */
export function parseOptions(argv: readonly string[]): Options | undefined {
  let quick = false;
  let only: string[] | undefined;
  let duration: number | undefined;
  let messages: number | undefined;
  let idleConns = 10_000;
  let install = true;
  let profile = false;
  let repeat = 1;
  let render: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    switch (arg) {
      case '--help':
      case '-h':
        return undefined;
      case '--quick':
        quick = true;
        break;
      case '--only':
        only = (argv[++i] ?? '').split(',').map((token) => token.trim().toLowerCase()).filter(Boolean);
        if (only.length === 0) throw new UsageError('--only needs a comma-separated list');
        break;
      case '--duration':
        duration = positiveNumber(arg, argv[++i]);
        break;
      case '--messages':
        messages = Math.round(positiveNumber(arg, argv[++i]));
        break;
      case '--idle-conns':
        idleConns = Math.round(positiveNumber(arg, argv[++i]));
        break;
      case '--repeat':
        repeat = Math.round(positiveNumber(arg, argv[++i]));
        break;
      case '--no-install':
        install = false;
        break;
      case '--profile':
        profile = true;
        break;
      case '--render':
        render = argv[++i];
        if (!render) throw new UsageError('--render needs a file');
        break;
      default:
        throw new UsageError(`unknown option ${arg}`);
    }
  }
  const selection = select(only);
  return {
    ...selection,
    idleConns: selection.idle ? idleConns : 0,
    repeat,
    duration: duration ?? (quick ? 0.5 : 2),
    messages,
    warmup: quick ? 0.3 : 1,
    install,
    profile,
    quick,
    render,
  };
}

const SECTIONS = ['idle', 'concurrency', 'chain', 'courier'] as const;

function select(
  only: string[] | undefined,
): Pick<Options, 'peers' | 'jobs' | 'transports' | 'cells' | 'concurrency' | 'chain' | 'courier' | 'sectionCells'> & { idle: boolean } {
  const tokens = new Set(only ?? []);
  const known = new Set<string>([...PEER_NAMES, ...JOBS, ...TRANSPORTS, '1', '8', '64', '2k', '1m', 'per-message', ...SECTIONS]);
  for (const token of tokens) if (!known.has(token)) throw new UsageError(`--only: unknown token "${token}"`);
  const pick = <T extends string>(all: readonly T[]): T[] => {
    const chosen = all.filter((value) => tokens.has(value));
    return chosen.length > 0 ? chosen : [...all];
  };
  const connTokens = ['1', '8', '64'].filter((t) => tokens.has(t)).map(Number);
  const bodyTokens = ['2k', '1m'].filter((t) => tokens.has(t));
  const cellKinds = tokens.has('per-message');
  const cells = CELLS.filter(
    (cell) =>
      (connTokens.length === 0 || connTokens.includes(cell.conns)) &&
      (bodyTokens.length === 0 || bodyTokens.includes(bodyTag(cell.bodyBytes))) &&
      (!cellKinds || cell.perMessage),
  );
  // Section tokens without peer, job or transport tokens ("--only idle", "--only chain,8,2k")
  // mean: just those sections.
  const mainTokens = new Set<string>([...PEER_NAMES, ...JOBS, ...TRANSPORTS]);
  const anySection = SECTIONS.some((section) => tokens.has(section));
  const onlySections = anySection && ![...tokens].some((token) => mainTokens.has(token));
  const section = (name: (typeof SECTIONS)[number]): boolean => only === undefined || tokens.has(name);
  return {
    peers: pick(PEER_NAMES),
    jobs: pick(JOBS),
    transports: pick(TRANSPORTS),
    cells: onlySections ? [] : cells,
    sectionCells: cells,
    idle: section('idle'),
    concurrency: section('concurrency'),
    chain: section('chain'),
    courier: section('courier'),
  };
}
