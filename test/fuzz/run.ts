/**
 * `npm run fuzz`: the long, coverage-guided run over every target (or the ones named).
 *
 *   npm run fuzz -- [--target NAME]... [--seconds 60] [--runs N] [--seed N] [--save]
 *
 * Prints, per target, the inputs run, the corpus and coverage reached, and each defect found
 * (minimized, saved under `.cache/fuzz-findings/<target>/`). With `--save`, inputs that reached
 * new code are added to `test/fuzz/corpus/<target>/`, where `npm test` replays them.
 * Exit status: 0 nothing found, 1 something found, 64 bad usage.
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { CORPUS_ROOT, fuzz, loadCorpus, minimize, saveInput, type Finding } from './engine.js';
import { targets } from './targets/index.js';

const FINDINGS_ROOT = fileURLToPath(new URL('../../../.cache/fuzz-findings/', import.meta.url));

function usage(message: string): never {
  process.stderr.write(`fuzz: ${message}\nusage: npm run fuzz -- [--target ${targets.map((t) => t.name).join('|')}]... [--seconds N] [--runs N] [--seed N] [--save]\n`);
  process.exit(64);
}

function positive(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const number = Number(value);
  if (!Number.isSafeInteger(number) || number < 1) usage(`--${name} needs a positive integer, got "${value}"`);
  return number;
}

function parse(): ReturnType<typeof parseOptions> {
  try {
    return parseOptions();
  } catch (error) {
    return usage((error as Error).message);
  }
}

function parseOptions() {
  return parseArgs({
    options: {
      target: { type: 'string', multiple: true },
      seconds: { type: 'string' },
      runs: { type: 'string' },
      seed: { type: 'string' },
      save: { type: 'boolean' },
    },
  });
}

const { values } = parse();
const chosen = values.target === undefined ? targets : values.target.map((name) => targets.find((t) => t.name === name) ?? usage(`unknown target "${name}"`));
const runs = positive(values.runs, 'runs');
const seconds = positive(values.seconds, 'seconds') ?? (runs === undefined ? 60 : undefined);
const seed = positive(values.seed, 'seed') ?? Date.now() % 0x7fffffff;

let total = 0;
const found: Finding[] = [];
process.stdout.write(`seed ${seed}; ${seconds === undefined ? `${runs} mutations` : `${seconds} s`} per target\n`);
for (const target of chosen) {
  const stats = await fuzz(target, {
    seed,
    guided: true,
    corpus: loadCorpus(target.name),
    ...(runs === undefined ? {} : { runs }),
    ...(seconds === undefined ? {} : { seconds }),
    onNewInput: values.save === true ? (input) => saveInput(join(CORPUS_ROOT, target.name), input) : undefined,
  });
  total += stats.inputs;
  const rate = Math.round(stats.inputs / stats.seconds);
  process.stdout.write(
    `${target.name.padEnd(16)} ${String(stats.inputs).padStart(9)} inputs ${String(rate).padStart(6)}/s  corpus ${String(stats.corpus).padStart(5)}  features ${String(stats.features).padStart(6)}  findings ${stats.findings.length}\n`,
  );
  for (const finding of stats.findings) {
    const small = await minimize(target, finding);
    const path = saveInput(join(FINDINGS_ROOT, target.name), small.input);
    found.push(small);
    process.stdout.write(`  ${small.error}\n    ${small.stack.replace(/\n/g, '\n    ')}\n    input (${small.input.length} bytes): ${path}\n    ${JSON.stringify(small.input.toString('latin1').slice(0, 200))}\n`);
  }
}
process.stdout.write(`${total} inputs, ${found.length} finding${found.length === 1 ? '' : 's'}\n`);
process.exitCode = found.length === 0 ? 0 : 1;
