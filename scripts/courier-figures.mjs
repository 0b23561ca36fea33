#!/usr/bin/env node
// Measures the Courier daemon's costs on hostile-sized input, each in a fresh process (after
// `npm run build`): the attachments module on large plain-text messages, the memory left after
// many timed-out modules, and noduplicates on many duplicates. Prints one line per figure.
//
//   node scripts/courier-figures.mjs            all figures
//   node scripts/courier-figures.mjs attachments 50
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

const dist = new URL('../dist/', import.meta.url);
const mib = (bytes) => `${(bytes / 1048576).toFixed(1)} MiB`;

async function chainOf(modules) {
  const { FilterChain } = await import(new URL('src/courier/chain.js', dist));
  const { CourierConfig } = await import(new URL('src/courier/helpers/config.js', dist));
  const { settingsFromObject } = await import(new URL('src/courier/settings.js', dist));
  const silent = { info() {}, warn() {}, error() {}, debug() {}, child: () => silent };
  return FilterChain.load(settingsFromObject({ modules }, process.cwd()), new CourierConfig({ sysconfdir: '/nonexistent' }), silent);
}

const controlFile = (dir, recipients = 'ralice@mail.test.example\nR\nN\n') => {
  const path = join(dir, 'C');
  writeFileSync(path, `sbob@sender.example\nMfigures\n${recipients}`);
  return path;
};

const measures = {
  /** The attachments module on a plain-text message of N MiB (lines of 72 bytes). */
  async attachments(size) {
    const dir = mkdtempSync(join(tmpdir(), 'mk-figures-'));
    try {
      const dataPath = join(dir, 'D');
      // Written a MiB at a time, so that the peak RSS is the filter's, not the test data's.
      const file = openSync(dataPath, 'w');
      writeSync(file, 'Subject: minutes\nContent-Type: text/plain\n\n');
      const block = `${'x'.repeat(71)}\n`.repeat(Math.floor(1048576 / 72));
      for (let i = 0; i < Number(size); i++) writeSync(file, block);
      closeSync(file);
      const chain = await chainOf(['attachments']);
      const cpu = process.cpuUsage();
      const started = Date.now();
      const reply = await chain.filter({ dataPath, controlPaths: [controlFile(dir)] });
      const used = process.cpuUsage(cpu);
      return `attachments, ${size} MiB plain text: reply ${reply.code}, ${Date.now() - started} ms, CPU ${Math.round((used.user + used.system) / 1000)} ms, peak RSS ${mib(process.resourceUsage().maxRSS * 1024)}`;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
  /** N runs of a module that opens a 1 MiB message, then ignores its signal and never answers. */
  async timeouts(count) {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc');
    const dir = mkdtempSync(join(tmpdir(), 'mk-figures-'));
    try {
      const dataPath = join(dir, 'D');
      writeFileSync(dataPath, `Subject: x\n\n${'x'.repeat(1023)}\n`.repeat(1024));
      const module = new URL('test/courier/modules/scripted.js', dist).pathname;
      const chain = await chainOf([{ module, options: { behaviour: 'hold-message' }, timeout: 0.05 }]);
      const { held } = await import(new URL('test/courier/modules/scripted.js', dist));
      gc();
      const before = process.memoryUsage();
      for (let i = 0; i < Number(count); i++) await chain.filter({ dataPath, controlPaths: [controlFile(dir)] });
      gc();
      const after = process.memoryUsage();
      return `${count} timed-out modules holding their 1 MiB message (${held.length} opened it): RSS ${mib(before.rss)} -> ${mib(after.rss)}, heap ${mib(before.heapUsed)} -> ${mib(after.heapUsed)}, buffers ${mib(before.arrayBuffers)} -> ${mib(after.arrayBuffers)}`;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
  /** noduplicates on one recipient repeated N + 1 times. */
  async duplicates(count) {
    const dir = mkdtempSync(join(tmpdir(), 'mk-figures-'));
    try {
      const dataPath = join(dir, 'D');
      writeFileSync(dataPath, 'Subject: x\n\nbody\n');
      const controlPath = controlFile(dir, 'ralice@mail.test.example\nR\nN\n'.repeat(Number(count) + 1));
      const chain = await chainOf(['noduplicates']);
      const started = Date.now();
      const reply = await chain.filter({ dataPath, controlPaths: [controlPath] });
      return `noduplicates, ${count} duplicates: reply ${reply.code}, ${Date.now() - started} ms`;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
};

const [name, argument] = process.argv.slice(2);
if (name) {
  console.log(await measures[name](argument));
} else {
  for (const [figure, value] of [['attachments', 10], ['attachments', 50], ['timeouts', 500], ['duplicates', 2000]]) {
    spawnSync(process.execPath, [process.argv[1], figure, String(value)], { stdio: 'inherit' });
  }
}
