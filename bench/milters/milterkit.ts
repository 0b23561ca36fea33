/**
 * The milterkit peer of the benchmark: the same two jobs as the C libmilter and pymilter peers.
 *
 *   node dist/bench/milters/milterkit.js noop|work SOCKET [--max-connections N] [--workers N]
 *
 * --max-connections raises the server's connection limit (for the idle-connections test);
 * --workers serves with N worker processes (for the concurrency-models section).
 * Both jobs implement every callback, so the MTA sends every step to each peer alike (a filter
 * that leaves callbacks out gets them negotiated away, which would flatter milterkit).
 *   noop: every callback continues.
 *   work: at end of message, add "X-Bench: <body bytes>", or reject the message when its
 *         Subject contains REJECTME.
 */
import { Milter, MilterServer, keepYoungGenerationSmall, type MilterOptions, type Verdict } from '../../src/index.js';

/**
 * Implements every callback and continues everywhere. Neither job keeps body chunks, so both take
 * them where they were read, as libmilter hands them to its filters.
 */
class NoopMilter extends Milter {
  static override options: MilterOptions = { actions: [], borrowedBody: true };
  override connect(): void {}
  override helo(): void {}
  override envfrom(): void {}
  override envrcpt(): void {}
  override data(): void {}
  override header(_name: string, _value: string): void {}
  override eoh(): void {}
  override body(_chunk: Buffer): void {}
  override eom(): void {}
  override abort(): void {}
  override close(): void {}
  override unknown(): void {}
}

/** Counts body bytes and reports them in a header, or rejects messages marked REJECTME. */
class WorkMilter extends NoopMilter {
  static override options: MilterOptions = { actions: ['addHeader'], borrowedBody: true };
  private bodyBytes = 0;
  private rejectMessage = false;

  override envfrom(): void {
    this.resetMessage();
  }

  override header(name: string, value: string): void {
    if (name.toLowerCase() === 'subject' && value.includes('REJECTME')) this.rejectMessage = true;
  }

  override body(chunk: Buffer): void {
    this.bodyBytes += chunk.length;
  }

  override eom(): Verdict {
    const reject = this.rejectMessage;
    const bytes = this.bodyBytes;
    this.resetMessage();
    if (reject) return 'reject';
    this.addHeader('X-Bench', String(bytes));
    return 'continue';
  }

  override abort(): void {
    this.resetMessage();
  }

  private resetMessage(): void {
    this.bodyBytes = 0;
    this.rejectMessage = false;
  }
}

const USAGE = 'usage: milterkit.js noop|work unix:/path|inet:PORT@127.0.0.1 [--max-connections N] [--workers N]';

/** Reads `--max-connections N` and `--workers N`. */
function parseFlags(args: string[]): { maxConnections?: number; workers?: number } {
  const flags: { maxConnections?: number; workers?: number } = {};
  for (let i = 0; i < args.length; i += 2) {
    const value = Number(args[i + 1]);
    if (!Number.isInteger(value) || value < 0) throw new Error(USAGE);
    if (args[i] === '--max-connections') flags.maxConnections = value;
    else if (args[i] === '--workers') flags.workers = value;
    else throw new Error(USAGE);
  }
  return flags;
}

async function main(): Promise<void> {
  const [job, socket, ...rest] = process.argv.slice(2);
  let flags: ReturnType<typeof parseFlags>;
  try {
    if ((job !== 'noop' && job !== 'work') || !socket) throw new Error(USAGE);
    flags = parseFlags(rest);
  } catch (error) {
    console.error(error instanceof Error ? error.message : String(error));
    process.exit(2);
  }
  // As milterkit serve does.
  keepYoungGenerationSmall();
  const server = new MilterServer({ filter: job === 'work' ? WorkMilter : NoopMilter, socket, ...flags });
  await server.listen();
  const stop = (): void => {
    // Exit through process.exit so --cpu-prof writes its profile.
    server.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

await main();
