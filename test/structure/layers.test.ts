/**
 * The layering rule: a module imports only from its own directory or from a lower layer, so the
 * protocol core never depends on a transport, a library module never on the command line, and one
 * side of the protocol never on the other. A new directory under `src/` gets a row here.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const srcRoot = fileURLToPath(new URL('../../../src/', import.meta.url));

/**
 * Layer of each top-level part of `src/` (a directory, or a file directly under `src/` without its
 * extension), lowest first.
 * Parts on the same layer may not import each other either.
 */
const layers: Record<string, number> = {
  // Foundations with no dependencies inside the project: the codec, the logger interface, option
  // checks, socket addresses.
  protocol: 0,
  log: 0,
  validate: 0,
  net: 0,
  // One session state machine per side.
  milter: 1,
  client: 1,
  // Transports and the virtual MTA above them; worker threads for filter code.
  server: 2,
  mta: 2,
  workers: 2,
  // The offline test kit joins both sides.
  testing: 3,
  // The Courier daemon: its transport, requests and replies, control and data files, and the
  // chain of `doFilter` modules (other kinds of module are passed in from above).
  courier: 4,
  // The filter API; its front-ends (milter, and Courier with its offline profile) above both it
  // and the Courier daemon; the bundled filters written on the API.
  'filter-api': 5,
  frontends: 6,
  filters: 7,
  // The command line and the root entry point, which gathers the milter-side library.
  cli: 8,
  index: 8,
};

/** Top-level part of `root` a path belongs to, or undefined outside it. */
function partOf(root: string, file: string): string | undefined {
  const relative = path.relative(root, file);
  if (relative.startsWith('..') || path.isAbsolute(relative)) return undefined;
  // A file directly under the root is named without its extension (`log` for log.ts and log.js).
  return relative.split(path.sep)[0]!.replace(/\.(ts|js)$/, '');
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') ? [full] : [];
  });
}

/** Every relative import, re-export and dynamic import of a file, resolved to the imported path. */
function importsOf(file: string): string[] {
  const info = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
  return info.importedFiles.map((ref) => ref.fileName).filter((name) => name.startsWith('.')).map((name) => path.resolve(path.dirname(file), name));
}

/** Parts of the tree under `root` that have no row in the layer table. */
function unknownParts(root: string): string[] {
  return [...new Set(sourceFiles(root).map((file) => partOf(root, file)!))].filter((part) => layers[part] === undefined);
}

/** The imports under `root` that break the layering rule, as `importer -> imported` lines. */
function violations(root: string): string[] {
  const found: string[] = [];
  for (const file of sourceFiles(root)) {
    const from = partOf(root, file)!;
    for (const target of importsOf(file)) {
      const to = partOf(root, target);
      if (to === undefined || to === from) continue;
      const fromLayer = layers[from];
      const toLayer = layers[to];
      if (fromLayer === undefined || toLayer === undefined || toLayer >= fromLayer) {
        found.push(`${path.relative(root, file)} -> ${path.relative(root, target)}`);
      }
    }
  }
  return found.sort();
}

test('every module imports only from its own part of src/ or from a lower layer', () => {
  assert.deepEqual(unknownParts(srcRoot), [], 'parts of src/ without a layer: add them to the table in this test');
  assert.deepEqual(violations(srcRoot), []);
});

test('the check reports imports, re-exports and dynamic imports that point up or sideways', () => {
  const root = mkdtempSync(path.join(tmpdir(), 'milterkit-layers-'));
  try {
    const files: Record<string, string> = {
      'protocol/frame.ts': "import { MilterServer } from '../server/server.js';\nexport const a = 1;\n",
      'client/index.ts': "export * from '../mta/index.js';\nexport { parse } from '../net/socket-spec.js';\n",
      'client/lazy.ts': "export const load = () => import('../cli/main.js');\n",
      'milter/session.ts': "import type { X } from '../client/connection.js';\nimport { y } from './queue.js';\n",
      'mta/session.ts': "import { MilterConnection } from '../client/connection.js';\nimport { z } from '../elsewhere/z.js';\n",
    };
    for (const [name, text] of Object.entries(files)) {
      mkdirSync(path.join(root, path.dirname(name)), { recursive: true });
      writeFileSync(path.join(root, name), text);
    }
    assert.deepEqual(violations(root), [
      'client/index.ts -> mta/index.js',
      'client/lazy.ts -> cli/main.js',
      'milter/session.ts -> client/connection.js',
      'mta/session.ts -> elsewhere/z.js',
      'protocol/frame.ts -> server/server.js',
    ]);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
