/**
 * A small coverage-guided fuzzer for milterkit's parsers and state machines, with no native code:
 * coverage comes from V8's own block coverage, read through `node:inspector` after every input,
 * so it runs on any Node >= 20 and on ES modules as they are built (no instrumentation step).
 *
 * An input that reaches a code block not reached before joins the corpus and is mutated further.
 * V8's binary block coverage is used (covered or not, no hit counts): it costs about one
 * millisecond per input where counting costs four, and more inputs beat finer feedback here. A target reports a defect by throwing; an
 * exception that escapes asynchronously, or a run that never ends, is a defect too.
 */
import { Session } from 'node:inspector';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Something to fuzz: how to run one input, and where to start. */
export interface FuzzTarget {
  readonly name: string;
  /** What is fuzzed and which invariants are checked, for the run's report. */
  readonly description: string;
  /** Valid inputs to start from, besides the corpus directory. */
  seeds(): Buffer[];
  /** Byte strings the mutator splices in (command letters, header names, length fields...). */
  readonly dictionary?: readonly Buffer[];
  /** Longest input produced (default 16 KiB). */
  readonly maxLength?: number;
  /** Runs one input; throws or rejects when an invariant breaks. Must end on its own. */
  run(input: Buffer): void | Promise<void>;
}

/** One defect: the input and what went wrong. */
export interface Finding {
  readonly target: string;
  readonly input: Buffer;
  /** The error, first line. */
  readonly error: string;
  /** Where it was thrown (top frames of the stack). */
  readonly stack: string;
}

export interface FuzzOptions {
  /** Seed of the mutations: the same seed, corpus and code replay the same inputs. */
  seed: number;
  /** Stop after this many mutated inputs (seeds and corpus not counted). */
  runs?: number;
  /** Stop after this many seconds. */
  seconds?: number;
  /** Keep inputs that reach new code (true) or only mutate the seeds and corpus (false, faster, fully reproducible). */
  guided: boolean;
  /** Inputs from the corpus directory. */
  corpus?: readonly Buffer[];
  /** Called for each input that reached new code. */
  onNewInput?(input: Buffer): void;
  /** Called for each defect with a signature not seen before in this run. */
  onFinding?(finding: Finding): void;
  /** A run that has not ended after this long is a defect (default 10 s: a limit no input comes near). */
  hangMs?: number;
}

export interface FuzzStats {
  /** Inputs run: seeds, corpus and mutations. */
  inputs: number;
  /** Size of the corpus at the end (seeds, corpus and inputs kept for new coverage). */
  corpus: number;
  /** Distinct coverage features seen (guided runs only). */
  features: number;
  /** One finding per distinct signature. */
  findings: Finding[];
  seconds: number;
}

/** Mulberry32: small, fast and seeded, so a run replays exactly. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A deterministic generator derived from an input's bytes, for choices a target makes per input (read sizes...). */
export function randomFor(input: Buffer): () => number {
  return seededRandom(createHash('sha1').update(input).digest().readUInt32BE(0));
}

const interestingBytes = [0x00, 0x01, 0x0a, 0x0d, 0x20, 0x3a, 0x7f, 0x80, 0xff];
const interestingInts = [0, 1, 2, 4, 5, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xffffffff];

/** Byte-level mutations, libFuzzer's usual set. */
export class Mutator {
  constructor(
    private readonly random: () => number,
    private readonly dictionary: readonly Buffer[],
    private readonly maxLength: number,
  ) {}

  /** A mutant of `base`, possibly spliced with `other`. */
  mutate(base: Buffer, other: Buffer): Buffer {
    let data: Buffer = Buffer.from(base);
    for (let i = 0, n = 1 + this.below(4); i < n; i++) data = this.once(data, other);
    return data.length > this.maxLength ? data.subarray(0, this.maxLength) : data;
  }

  private below(n: number): number {
    return Math.floor(this.random() * n);
  }

  private once(data: Buffer, other: Buffer): Buffer {
    const at = this.below(data.length + 1);
    const pick = <T>(items: readonly T[]): T => items[this.below(items.length)]!;
    switch (data.length === 0 ? 0 : this.below(11)) {
      case 0:
        return Buffer.concat([data.subarray(0, at), Buffer.from(Array.from({ length: 1 + this.below(8) }, () => this.below(256))), data.subarray(at)]);
      case 1:
        data[at % data.length]! ^= 1 << this.below(8);
        return data;
      case 2:
        data[at % data.length] = this.below(256);
        return data;
      case 3:
        data[at % data.length] = pick(interestingBytes);
        return data;
      case 4: {
        const length = 1 + this.below(Math.min(64, data.length));
        return Buffer.concat([data.subarray(0, at), data.subarray(at + length)]);
      }
      case 5: {
        const from = this.below(data.length);
        const piece = data.subarray(from, from + 1 + this.below(64));
        return Buffer.concat([data.subarray(0, at), piece, data.subarray(at)]);
      }
      case 6:
        return Buffer.concat([data.subarray(0, at), other.subarray(this.below(other.length + 1))]);
      case 7:
        return this.dictionary.length === 0 ? data : Buffer.concat([data.subarray(0, at), pick(this.dictionary), data.subarray(at)]);
      case 8: {
        if (this.dictionary.length === 0) return data;
        const word = pick(this.dictionary);
        return Buffer.concat([data.subarray(0, at), word, data.subarray(at + word.length)]);
      }
      case 9: {
        // Length fields are 32-bit big-endian: make one huge, zero, or off by a little.
        if (data.length < 4) return data;
        const offset = this.below(data.length - 3);
        const value = this.random() < 0.5 ? pick(interestingInts) : (data.readUInt32BE(offset) + this.below(9) - 4) >>> 0;
        data.writeUInt32BE(value >>> 0, offset);
        return data;
      }
      default:
        data[at % data.length] = (data[at % data.length]! + this.below(5) - 2) & 0xff;
        return data;
    }
  }
}

interface CoverageRange {
  startOffset: number;
  endOffset: number;
  count: number;
}
interface CoverageResult {
  result: Array<{ scriptId: string; url: string; functions: Array<{ ranges: CoverageRange[] }> }>;
}

/**
 * V8 block coverage of milterkit's own modules, read and reset after each input.
 *
 * In binary mode V8 reports, for each function run since the last reading, the blocks of it that
 * did not run. A block is known by its start, learnt the first time it is reported as not run;
 * the features of an input are the known block starts that lay in run code. So a block that runs
 * for the first time is a new feature.
 */
export class BlockCoverage {
  private readonly session = new Session();
  /** Per function (`scriptId:start`), the offsets where a block starts or a skipped block ends. */
  private readonly boundaries = new Map<string, Set<number>>();

  constructor(private readonly include: (url: string) => boolean) {
    this.session.connect();
    this.post('Profiler.enable');
    this.post('Profiler.startPreciseCoverage', { callCount: false, detailed: true });
  }

  /** The blocks run since the last call (every block run for the first time is among them). */
  take(): string[] {
    const features: string[] = [];
    const { result } = this.post('Profiler.takePreciseCoverage') as CoverageResult;
    for (const script of result) {
      if (!this.include(script.url)) continue;
      for (const { ranges } of script.functions) {
        const whole = ranges[0];
        if (whole === undefined || whole.count === 0) continue;
        const key = `${script.scriptId}:${whole.startOffset}`;
        let known = this.boundaries.get(key);
        if (known === undefined) this.boundaries.set(key, (known = new Set([whole.startOffset])));
        for (let i = 1; i < ranges.length; i++) known.add(ranges[i]!.startOffset).add(ranges[i]!.endOffset);
        for (const offset of known) if (ranRange(ranges, offset)) features.push(`${script.scriptId}:${offset}`);
      }
    }
    return features;
  }

  stop(): void {
    this.post('Profiler.stopPreciseCoverage');
    this.session.disconnect();
  }

  /** On the main thread the inspector answers synchronously. */
  private post(method: string, params?: object): unknown {
    let answer: unknown;
    let failure: Error | null = null;
    this.session.post(method, params, (error, result) => {
      failure = error;
      answer = result;
    });
    if (failure !== null) throw failure;
    return answer;
  }
}

/** Whether code at `offset` ran: the innermost range holding it (V8 lists outer ranges first) has a count. */
function ranRange(ranges: readonly CoverageRange[], offset: number): boolean {
  for (let i = ranges.length - 1; i >= 0; i--) {
    const range = ranges[i]!;
    if (offset >= range.startOffset && offset < range.endOffset) return range.count > 0;
  }
  return false;
}

/** Project modules only: coverage of Node's internals and of the tests would only add noise. */
const projectSource = (url: string): boolean => url.includes('/dist/src/');

function describeError(error: unknown): { message: string; stack: string } {
  if (!(error instanceof Error)) return { message: `non-error thrown: ${String(error)}`, stack: '' };
  const frames = (error.stack ?? '').split('\n').filter((line) => line.trimStart().startsWith('at ')).slice(0, 4);
  return { message: `${error.name}: ${error.message.split('\n')[0]}`, stack: frames.map((f) => f.trim()).join('\n') };
}

/** Same defect, different input: the message without numbers and the top frame. */
function signatureOf(finding: { error: string; stack: string }): string {
  return `${finding.error.replace(/\d+/g, 'N')}|${finding.stack.split('\n')[0] ?? ''}`;
}

/**
 * Runs one input with everything that can go wrong caught: a throw, a rejection, an exception
 * escaping from a timer or a later microtask, or no end at all.
 */
export async function runOne(target: FuzzTarget, input: Buffer, hangMs = 10_000): Promise<Finding | undefined> {
  const escaped: unknown[] = [];
  const onEscape = (error: unknown): void => {
    escaped.push(error);
  };
  process.on('uncaughtException', onEscape);
  process.on('unhandledRejection', onEscape);
  let timer: NodeJS.Timeout | undefined;
  try {
    const hang = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`the run did not end within ${hangMs} ms`)), hangMs);
    });
    await Promise.race([Promise.resolve().then(() => target.run(input)), hang]);
    // Let errors thrown from callbacks scheduled by the run surface before the next input.
    await new Promise((resolve) => setImmediate(resolve));
  } catch (error) {
    escaped.unshift(error);
  } finally {
    clearTimeout(timer);
    process.off('uncaughtException', onEscape);
    process.off('unhandledRejection', onEscape);
  }
  if (escaped.length === 0) return undefined;
  const { message, stack } = describeError(escaped[0]);
  return { target: target.name, input, error: message, stack };
}

/**
 * Shrinks a failing input while it fails with the same signature: removes ever smaller pieces,
 * libFuzzer's `-minimize_crash` in miniature. Bounded by `attempts` runs.
 */
export async function minimize(target: FuzzTarget, finding: Finding, attempts = 300): Promise<Finding> {
  const signature = signatureOf(finding);
  let best = finding;
  for (let size = Math.max(1, best.input.length >> 1); size >= 1 && attempts > 0; size >>= 1) {
    for (let at = 0; at < best.input.length && attempts > 0; at += size) {
      const candidate = Buffer.concat([best.input.subarray(0, at), best.input.subarray(at + size)]);
      attempts--;
      const result = await runOne(target, candidate);
      if (result !== undefined && signatureOf(result) === signature) {
        best = result;
        at -= size;
      }
    }
  }
  return best;
}

/** Fuzzes one target; resolves with what was run and found. */
export async function fuzz(target: FuzzTarget, options: FuzzOptions): Promise<FuzzStats> {
  const started = performance.now();
  const deadline = options.seconds === undefined ? Infinity : started + options.seconds * 1000;
  const maxRuns = options.runs ?? Infinity;
  const random = seededRandom(options.seed);
  const mutator = new Mutator(random, target.dictionary ?? [], target.maxLength ?? 16 * 1024);
  const coverage = options.guided ? new BlockCoverage(projectSource) : undefined;
  const seen = new Set<string>();
  const signatures = new Set<string>();
  const findings: Finding[] = [];
  const corpus: Buffer[] = [];
  let inputs = 0;

  const execute = async (input: Buffer): Promise<boolean> => {
    inputs++;
    const finding = await runOne(target, input, options.hangMs);
    let fresh = false;
    if (coverage !== undefined) {
      for (const feature of coverage.take()) {
        if (seen.has(feature)) continue;
        seen.add(feature);
        fresh = true;
      }
    }
    if (finding !== undefined && !signatures.has(signatureOf(finding))) {
      signatures.add(signatureOf(finding));
      findings.push(finding);
      options.onFinding?.(finding);
    }
    return fresh;
  };

  try {
    for (const input of [...target.seeds(), ...(options.corpus ?? [])]) {
      await execute(input);
      corpus.push(input);
    }
    if (corpus.length === 0) corpus.push(Buffer.alloc(0));
    for (let run = 0; run < maxRuns && performance.now() < deadline; run++) {
      // Recent finds are where new paths are: pick among the newest half more often.
      const index = random() < 0.5 ? corpus.length - 1 - Math.floor(random() * Math.ceil(corpus.length / 2)) : Math.floor(random() * corpus.length);
      const input = mutator.mutate(corpus[index]!, corpus[Math.floor(random() * corpus.length)]!);
      if ((await execute(input)) && options.guided) {
        corpus.push(input);
        options.onNewInput?.(input);
      }
    }
  } finally {
    coverage?.stop();
  }
  return { inputs, corpus: corpus.length, features: seen.size, findings, seconds: (performance.now() - started) / 1000 };
}

/** Where each target's corpus lives in the source tree (the compiled tests run from `dist/`). */
export const CORPUS_ROOT = fileURLToPath(new URL('../../../test/fuzz/corpus/', import.meta.url));

/** The corpus files of a target, sorted by name so that runs replay in the same order. */
export function loadCorpus(target: string, root = CORPUS_ROOT): Buffer[] {
  const dir = join(root, target);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .sort()
    .map((name) => readFileSync(join(dir, name)));
}

/** Writes an input under its content hash (so the same input is kept once); returns the path. */
export function saveInput(dir: string, input: Buffer, prefix = ''): string {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, prefix + createHash('sha1').update(input).digest('hex').slice(0, 16));
  writeFileSync(path, input);
  return path;
}
