/**
 * The filter API's modules in the Courier daemon's chain: a module whose default (or `filter`)
 * export is a filter definition, a built-in name (the bundled filters, which the command line
 * passes in), and a whole chain configured in the filter API's format. Each runs as a `doFilter`
 * module through the Courier front-end, beside the daemon's own `doFilter` modules, with the
 * engine applying every entry's per-hook deadline, `onError`, `onTimeout`, `trusting` and
 * `testing` exactly as on the milter front-end; the daemon bounds it by its message deadline only.
 *
 * @packageDocumentation
 */
import type { CourierLogger } from '../courier/logging.js';
import type { CourierFilterModule } from '../courier/module-api.js';
import type { LoadedModule, ModuleKind } from '../courier/module-loader.js';
import type { DaemonSettings, ModuleSettings } from '../courier/settings.js';
import { Chain, type ChainConfig } from '../filter-api/chain.js';
import { parseReply } from '../filter-api/config.js';
import { isFilterDefinition, type AnyFilter } from '../filter-api/contract.js';
import type { EditLimits } from '../filter-api/draft.js';
import { runChainOnCourierMessage } from './courier.js';

/**
 * A chain of the filter API as one entry of the daemon's chain (a whole configured chain, for
 * {@link ModuleSettings.create}, or one filter with its entry's policies): loaded when the
 * daemon's chain initialises its modules.
 */
export function courierChainModule(config: Omit<ChainConfig, 'logger'>): LoadedModule {
  let chain: Promise<Chain> | undefined;
  // The daemon's chain logs each message in one line, with what the filters did noted into it.
  const load = (logger: CourierLogger): Promise<Chain> => (chain ??= Chain.load({ ...config, logger, logMessages: false }));
  const module: CourierFilterModule = {
    async initFilter(context) {
      await load(context.logger);
    },
    async doFilter(dataPath, controlPaths, context) {
      return runChainOnCourierMessage(await load(context.logger), { dataPath, controlPaths }, {
        logger: context.logger,
        courier: context.courier,
        signal: context.signal,
        readControlFiles: context.readControlFiles,
        note: context.note,
      });
    },
    // The filters' own `close` (what their `init` opened); a chain that never loaded has none to run.
    async closeFilter() {
      const loaded = await chain?.catch(() => undefined);
      await loaded?.close();
    },
  };
  return { module, ownDeadlines: true };
}

/** Options of {@link filterApiModules}. */
export interface FilterApiModuleOptions {
  /** Filters known by name in the `modules:` format (the command line passes the bundled ones). */
  readonly builtins?: Readonly<Record<string, AnyFilter>>;
  /** Bounds on what the filters may read and add (message size, recipients). */
  readonly limits?: Partial<EditLimits>;
}

/**
 * The one-filter chain of a `modules:` entry: the entry's deadline (per hook), failure policy,
 * `trusting` and `testing`; the daemon's `testing` as the engine's shadow mode and its replies for
 * the failure policies. The daemon's chain does the `for` bypass on the module's accept reply.
 */
function entryChain(filter: AnyFilter, entry: ModuleSettings, settings: DaemonSettings, limits: Partial<EditLimits> | undefined): Omit<ChainConfig, 'logger'> {
  const { name, options, trusting, testing, onError, onTimeout } = entry;
  return {
    filters: [{ filter, name, options, trusting, testing, onError, onTimeout, timeoutMs: entry.timeout * 1000 }],
    shadow: settings.testing,
    replies: { tempfail: parseReply('tempfail', settings.replies.tempfail), reject: parseReply('reject', settings.replies.reject) },
    ...(limits ? { limits } : {}),
  };
}

/** The daemon's module kind for filters of the filter API (pass it to `FilterChain.load`). */
export function filterApiModules(options: FilterApiModuleOptions = {}): ModuleKind {
  const loaded = (filter: AnyFilter, entry: ModuleSettings, settings: DaemonSettings): LoadedModule => courierChainModule(entryChain(filter, entry, settings, options.limits));
  return {
    exports: 'filter definition',
    builtin(entry, settings) {
      const filter = options.builtins?.[entry.module];
      return filter ? loaded(filter, entry, settings) : undefined;
    },
    fromExports(exported, entry, settings) {
      const definition = exported.default ?? exported.filter;
      return isFilterDefinition(definition) ? loaded(definition, entry, settings) : undefined;
    },
  };
}
