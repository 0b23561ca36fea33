#!/usr/bin/env node
// Makes sure the real services the test suites start are on this machine, before `npm test` runs
// them: Postfix and Sendmail (test/e2e), OpenDKIM and miltertest (test/interop), a Debian 12 chroot
// with Courier (test/courier). Each step in scripts/prerequisites/ is an idempotent shell script
// that installs from Debian's packages only what is missing; with everything in place a run takes
// well under a second and makes no network access.
//
// The suites themselves need root (private MTA instances, namespaces, a chroot), so as root the
// steps run; otherwise this stops with what to run instead. Nothing is ever skipped.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const stepsDir = join(root, 'scripts', 'prerequisites');

// A fresh clone needs the dependencies (TypeScript first) before anything else, and a checkout
// whose package-lock.json changed after the last install (npm writes node_modules/.package-lock.json)
// needs them again: a dependency added since would otherwise fail the build.
const installed = join(root, 'node_modules', '.package-lock.json');
const stale = !existsSync(join(root, 'node_modules', 'typescript')) || !existsSync(installed) || statSync(installed).mtimeMs < statSync(join(root, 'package-lock.json')).mtimeMs;
if (stale) {
  const npm = spawnSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: root, stdio: 'inherit' });
  if (npm.status !== 0) process.exit(npm.status ?? 1);
}

const steps = readdirSync(stepsDir)
  .filter((name) => name.endsWith('.sh'))
  .sort();

if (typeof process.getuid === 'function' && process.getuid() !== 0) {
  console.error(
    [
      'npm test runs the real-service suites (Postfix, Sendmail, OpenDKIM, miltertest, Courier in a chroot),',
      'which must be installed and started as root. Run it as root:',
      '',
      '  sudo npm test',
      '',
      `It installs what is missing from Debian's packages first (${steps.join(', ')} in scripts/prerequisites/).`,
    ].join('\n'),
  );
  process.exit(77);
}

for (const step of steps) {
  const started = Date.now();
  const result = spawnSync('bash', [join(stepsDir, step)], {
    stdio: 'inherit',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  if (result.status !== 0) {
    console.error(`prerequisites: ${step} failed (exit status ${result.status ?? result.signal}); the test suites cannot run without it`);
    process.exit(1);
  }
  const seconds = (Date.now() - started) / 1000;
  if (seconds >= 5) console.error(`prerequisites: ${step} took ${seconds.toFixed(0)} s`);
}
