/**
 * Finds and imports filter modules: built-in names, paths (relative to the configuration file)
 * or package names.
 *
 * @packageDocumentation
 */
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { CourierFilterModule } from './module-api.js';
import { isFilterDefinition, type AnyFilter } from '../filter-api/contract.js';

/** Built-in modules by the name used in the configuration (pythonfilter's names): the bundled filters of the filter API. */
export const BUILTIN_MODULES: Readonly<Record<string, string>> = {
  whitelist_auth: '../filters/whitelist-auth.js',
  whitelist_relayclients: '../filters/whitelist-relayclients.js',
  noduplicates: '../filters/noduplicates.js',
  deliveredto: '../filters/deliveredto.js',
  attachments: '../filters/attachments.js',
  add_header: '../filters/add-header.js',
};

/** Resolves a configured module reference to an import specifier. */
export function moduleSpecifier(reference: string, baseDirectory: string): string {
  const builtin = BUILTIN_MODULES[reference];
  if (builtin) return new URL(builtin, import.meta.url).href;
  if (reference.startsWith('.') || isAbsolute(reference)) return pathToFileURL(resolve(baseDirectory, reference)).href;
  return reference;
}

/** What a module reference exports: a `doFilter` module, or a filter definition of the filter API. */
export type LoadedModule = { readonly kind: 'module'; readonly module: CourierFilterModule } | { readonly kind: 'filter'; readonly filter: AnyFilter };

/** Imports a module: one that exports `doFilter` (directly or on its default export), or a filter definition. */
export async function loadFilterModule(reference: string, baseDirectory: string): Promise<LoadedModule> {
  const loaded = (await import(moduleSpecifier(reference, baseDirectory))) as Record<string, unknown>;
  const candidates = [loaded, loaded.default].filter((c): c is Record<string, unknown> => typeof c === 'object' && c !== null);
  for (const candidate of candidates) {
    if (typeof candidate.doFilter !== 'function') continue;
    const initFilter = candidate.initFilter;
    if (initFilter !== undefined && typeof initFilter !== 'function') throw new Error(`${reference}: initFilter is not a function`);
    return { kind: 'module', module: candidate as unknown as CourierFilterModule };
  }
  const definition = loaded.default ?? loaded.filter;
  if (isFilterDefinition(definition)) return { kind: 'filter', filter: definition };
  throw new Error(`${reference}: exports no doFilter function and no filter definition`);
}
