#!/usr/bin/env node
// Runs the compiled test files (dist/test/**/*.test.js, or the files and folders given) with
// node's test runner. Node 20 has no glob support for --test, and given a folder it would also run
// fixtures and helpers as tests, so the files are listed here.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

function testFiles(dir) {
  if (!statSync(dir).isDirectory()) return [dir];
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return testFiles(path);
    return entry.name.endsWith('.test.js') ? [path] : [];
  });
}

const roots = process.argv.slice(2);
const files = (roots.length > 0 ? roots : ['dist/test']).flatMap(testFiles).sort();
if (files.length === 0) {
  console.error('no test files found: run tsc first');
  process.exit(1);
}
const result = spawnSync(process.execPath, ['--test', ...files], { stdio: 'inherit' });
process.exit(result.status ?? 1);
