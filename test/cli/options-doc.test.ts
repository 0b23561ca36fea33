import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { replaceGeneratedTable } from '../../src/cli/options-doc.js';
import { serveHelp, SERVE_OPTIONS } from '../../src/cli/serve-options.js';
import { SERVER_DEFAULTS } from '../../src/index.js';

test('docs/options.md shows the table generated from the serve options (regenerate: node scripts/options-doc.mjs)', () => {
  const text = readFileSync(new URL('../../../docs/options.md', import.meta.url), 'utf8');
  assert.equal(text, replaceGeneratedTable(text));
});

test('serve --help lists every option of the table with the default the server uses', () => {
  const help = serveHelp();
  for (const option of SERVE_OPTIONS) assert.match(help, new RegExp(`--${option.flag}\\b`));
  assert.match(help.replace(/\s+/g, ' '), new RegExp(`--max-connections N .*\\(default ${SERVER_DEFAULTS.maxConnections}\\)`));
  assert.match(help.replace(/\s+/g, ' '), /--negotiation-timeout SECONDS .*\(default 10\)/);
});
