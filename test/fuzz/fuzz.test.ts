/**
 * The short fuzz run of every `npm test`: each target's seeds, its corpus (inputs that reached new
 * code in longer runs, and every input that once found a defect) and a fixed number of mutations
 * from a fixed seed, so a failure replays exactly. `npm run fuzz` is the long, coverage-guided run.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fuzz, loadCorpus, type Finding } from './engine.js';
import { targets } from './targets/index.js';

const MUTATIONS = 300;
const SEED = 20261126;

function describe(finding: Finding): string {
  return `${finding.error}\n${finding.stack}\ninput (hex): ${finding.input.toString('hex')}`;
}

for (const target of targets) {
  test(`fuzz ${target.name}: seeds, corpus and ${MUTATIONS} seeded mutations keep the invariants`, async () => {
    const corpus = loadCorpus(target.name);
    const stats = await fuzz(target, { seed: SEED, runs: MUTATIONS, guided: false, corpus });
    assert.equal(stats.inputs, target.seeds().length + corpus.length + MUTATIONS);
    assert.deepEqual(stats.findings.map(describe), [], `${target.description}`);
  });
}
