/**
 * Finds and imports the chain's modules: paths (relative to the configuration file) and package
 * names. The daemon itself runs `doFilter` modules; other kinds of module (the filter API's
 * filters, and the built-in names, which are bundled filters of that API) come from the
 * {@link ModuleKind}s the daemon's owner passes in, so that the daemon depends on none of them.
 *
 * @packageDocumentation
 */
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { CourierFilterModule } from './module-api.js';
import type { DaemonSettings, ModuleSettings } from './settings.js';

/** A module ready for the chain. */
export interface LoadedModule {
  readonly module: CourierFilterModule;
  /**
   * True when the module bounds each of its own steps by the entry's `timeout` (a filter of the
   * filter API, whose engine times every hook): the daemon then bounds it by the message
   * deadline only.
   */
  readonly ownDeadlines: boolean;
}

/**
 * A kind of module the daemon runs besides `doFilter` modules. The command line passes the
 * filter API's (see `src/frontends/courier-modules.ts`); a program that embeds the daemon passes
 * what it wants to run.
 */
export interface ModuleKind {
  /** What a module of this kind exports, for the error about a module of no known kind ("a filter definition"). */
  readonly exports: string;
  /** The module for a built-in name of this kind, or undefined when `entry.module` names none. */
  builtin(entry: ModuleSettings, settings: DaemonSettings): LoadedModule | undefined;
  /** The module for what an imported file exports, or undefined when it is not of this kind. */
  fromExports(exported: Readonly<Record<string, unknown>>, entry: ModuleSettings, settings: DaemonSettings): LoadedModule | undefined;
}

/** Resolves a configured module reference to an import specifier. */
export function moduleSpecifier(reference: string, baseDirectory: string): string {
  if (reference.startsWith('.') || isAbsolute(reference)) return pathToFileURL(resolve(baseDirectory, reference)).href;
  return reference;
}

/** The `doFilter` module among what a file exports (directly or on its default export), if any. */
function doFilterModule(exported: Readonly<Record<string, unknown>>, reference: string): CourierFilterModule | undefined {
  const candidates = [exported, exported.default].filter((c): c is Record<string, unknown> => typeof c === 'object' && c !== null);
  for (const candidate of candidates) {
    if (typeof candidate.doFilter !== 'function') continue;
    for (const hook of ['initFilter', 'closeFilter']) {
      if (candidate[hook] !== undefined && typeof candidate[hook] !== 'function') throw new Error(`${reference}: ${hook} is not a function`);
    }
    return candidate as unknown as CourierFilterModule;
  }
  return undefined;
}

/**
 * Loads one entry of the chain: a module made in code (`entry.create`), a built-in name of one of
 * `kinds`, or an imported file that exports `doFilter` or a module of one of `kinds`.
 * @throws Error naming the reference when nothing fits
 */
export async function loadModule(entry: ModuleSettings, settings: DaemonSettings, kinds: readonly ModuleKind[]): Promise<LoadedModule> {
  if (entry.create) return entry.create();
  for (const kind of kinds) {
    const builtin = kind.builtin(entry, settings);
    if (builtin) return builtin;
  }
  const reference = entry.module;
  const exported = (await import(moduleSpecifier(reference, settings.baseDirectory))) as Record<string, unknown>;
  const module = doFilterModule(exported, reference);
  if (module) return { module, ownDeadlines: false };
  for (const kind of kinds) {
    const loaded = kind.fromExports(exported, entry, settings);
    if (loaded) return loaded;
  }
  throw new Error(`${reference}: exports no doFilter function${kinds.map((kind) => ` and no ${kind.exports}`).join('')}`);
}
