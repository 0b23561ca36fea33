/**
 * keepYoungGenerationSmall: a process whose objects outlive a few collections (a connection per
 * message) keeps V8's young generation at its starting size instead of letting it grow to 16 MiB
 * per semi-space. Sizes are limits far from both outcomes, not measurements.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const MiB = 1024 * 1024;
const fixture = fileURLToPath(new URL('./fixtures/young-generation.js', import.meta.url));

/** The young generation's size after the fixture's allocations, in a fresh process. */
function youngGenerationSize(mode: 'keep' | 'default'): number {
  return Number(execFileSync(process.execPath, [fixture, mode], { encoding: 'utf8' }).trim());
}

test('keepYoungGenerationSmall: objects that survive collections no longer grow the young generation', () => {
  const grown = youngGenerationSize('default');
  const kept = youngGenerationSize('keep');
  // Without the call the same allocations grow it (so this test can fail).
  assert.ok(grown > 8 * MiB, `the workload grows V8's young generation by default (${grown} bytes)`);
  assert.ok(kept <= 4 * MiB, `young generation ${kept} bytes`);
});
