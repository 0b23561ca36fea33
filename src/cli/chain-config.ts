/**
 * The command line's access to configuration files: filters found among the bundled ones, in
 * the file's filter path or as packages (TypeScript sources mapped to their compiled files), and
 * the reload that keeps the running chain when the new file is bad.
 */
import { readConfig, startChain, type Configuration } from '../filter-api/config.js';
import type { ReloadableChain } from '../frontends/reloadable.js';
import type { Logger } from '../log.js';
import { bundledFilters } from '../filters/index.js';
import { resolveModulePath } from './load-filter.js';

/** True when a command-line target names a configuration file rather than a filter module. */
export function isConfigFile(path: string): boolean {
  return /\.(ya?ml|json)$/i.test(path);
}

/**
 * Reads and checks a configuration file.
 * @throws ConfigError
 */
export function loadConfiguration(file: string): Promise<Configuration> {
  return readConfig(file, { builtins: bundledFilters, resolveModule: resolveModulePath });
}

/**
 * Reads the file again and, if it is good and its filters start, puts its chain in place for new
 * connections. A bad file is logged with its line and changes nothing.
 */
export async function reloadChain(file: string, holder: ReloadableChain, logger: Logger): Promise<boolean> {
  try {
    const configuration = await loadConfiguration(file);
    holder.replace(await startChain(configuration, logger));
    logger.info({ event: 'config-reloaded', file, filters: holder.chain.entries.map((e) => e.name) }, `reloaded ${file}`);
    return true;
  } catch (error) {
    logger.error({ event: 'config-reload-failed', file, err: error }, `reload failed, keeping the running chain: ${(error as Error).message}`);
    return false;
  }
}
