#!/usr/bin/env node
// Rewrites the generated table of docs/options.md from the option table of `milterkit serve`
// (run `npm run build` first). test/cli/options-doc.test.ts fails while the two differ.
import { readFileSync, writeFileSync } from 'node:fs';
import { replaceGeneratedTable } from '../dist/src/cli/options-doc.js';

const file = new URL('../docs/options.md', import.meta.url);
writeFileSync(file, replaceGeneratedTable(readFileSync(file, 'utf8')));
