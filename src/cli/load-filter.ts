/** Loads a filter module given on the command line. */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { MilterFilter } from '../milter/filter.js';

/**
 * Resolves a module path; a `.ts` source path is mapped to its compiled file under `dist/`, so
 * `milterkit serve examples/add-header.ts` works from the project after `npm run build`.
 */
export function resolveModulePath(file: string): string {
  const absolute = path.resolve(file);
  if (!absolute.endsWith('.ts')) return absolute;
  let dir = path.dirname(absolute);
  for (;;) {
    const compiled = path.join(dir, 'dist', path.relative(dir, absolute).replace(/\.ts$/, '.js'));
    if (existsSync(compiled)) return compiled;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`${file} is TypeScript and no compiled ${path.basename(file, '.ts')}.js was found under a dist/ directory; run npm run build`);
    dir = parent;
  }
}

/** Imports a filter module: its default export (or `filter` export) is a Milter subclass, a factory or a plain object. */
export async function loadFilter(file: string): Promise<MilterFilter> {
  const module = (await import(pathToFileURL(resolveModulePath(file)).href)) as { default?: MilterFilter; filter?: MilterFilter };
  const filter = module.default ?? module.filter;
  if (filter === undefined) throw new Error(`${file} has no default export (a Milter subclass or an object of callbacks)`);
  return filter;
}
