/**
 * The Courier daemon's configuration file, in either format: the filter API's (`chain:`, the file
 * `milterkit serve --config` and `check-config` read, plus its `courier:` section) or the daemon's
 * own `modules:` format, which keeps working. A file in the filter API's format becomes one module
 * of the daemon's chain: the whole chain, run by the engine as on a milter MTA. The daemon's chain
 * is loaded with the filter API's module kind, so that filters of the API (and the bundled ones,
 * by name) run beside `doFilter` modules.
 *
 * @packageDocumentation
 */
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { isMap, parseDocument } from 'yaml';
import { FilterChain } from '../courier/chain.js';
import type { CourierConfig } from '../courier/helpers/config.js';
import type { CourierLogger } from '../courier/logging.js';
import { checkConfigurationTrust, DEFAULT_REPLIES, loadSettings, settingsFromObject, type DaemonSettings } from '../courier/settings.js';
import type { Configuration } from '../filter-api/config.js';
import { DEFAULT_REJECT, DEFAULT_TEMPFAIL, type SmtpReply } from '../filter-api/decisions.js';
import { bundledFilters } from '../filters/index.js';
import { courierChainModule, filterApiModules } from '../frontends/courier-modules.js';
import { loadConfiguration } from './chain-config.js';

/** The kinds of module the daemon runs besides `doFilter` modules: the filter API's, bundled filters by name. */
const MODULE_KINDS = [filterApiModules({ builtins: bundledFilters })];

/** Loads the daemon's chain as `milterkit courier` runs it: `doFilter` modules and filters of the API side by side. */
export function loadCourierChain(settings: DaemonSettings, courier: CourierConfig, logger: CourierLogger): Promise<FilterChain> {
  return FilterChain.load(settings, courier, logger, MODULE_KINDS);
}

/** The name of the daemon's one module that runs a configuration's chain (in logs). */
export const CHAIN_MODULE_NAME = 'chain';

/** Whether a file is in the filter API's format: a mapping with `chain` (broken files too, for their line numbers). */
function usesChainFormat(text: string): boolean {
  const document = parseDocument(text, { logLevel: 'silent' });
  if (document.errors.length > 0) return true;
  return isMap(document.contents) && document.contents.has('chain');
}

function replyText(reply: SmtpReply): string {
  return [reply.code, ...(reply.xcode ? [reply.xcode] : []), reply.lines.join(' ')].join(' ');
}

/** The daemon's settings for a configuration in the filter API's format. */
export function settingsFromConfiguration(configuration: Configuration): DaemonSettings {
  const { chain, courier } = configuration;
  const { name, socketDirectory, messageTimeout, requestTimeout, shutdownTimeout, acceptReply, busyReply, ...directories } = courier;
  const defaults = settingsFromObject({}, dirname(resolve(configuration.file)));
  const seconds = messageTimeout ?? defaults.messageTimeout;
  return {
    ...defaults,
    ...(name === undefined ? {} : { name }),
    ...(socketDirectory === undefined ? {} : { socketDirectory }),
    maxConnections: configuration.maxConnections ?? defaults.maxConnections,
    messageTimeout: seconds,
    requestTimeout: requestTimeout ?? defaults.requestTimeout,
    shutdownTimeout: shutdownTimeout ?? defaults.shutdownTimeout,
    logLevel: configuration.logLevel,
    replies: {
      accept: acceptReply ?? DEFAULT_REPLIES.accept,
      busy: busyReply ?? DEFAULT_REPLIES.busy,
      // Unless the file says otherwise, the same replies as on milter MTAs.
      tempfail: replyText(chain.replies?.tempfail ?? DEFAULT_TEMPFAIL),
      reject: replyText(chain.replies?.reject ?? DEFAULT_REJECT),
    },
    courier: directories,
    // trusting and shadow are the engine's: the daemon's own stay off so nothing is done twice.
    modules: [
      {
        module: configuration.file,
        name: CHAIN_MODULE_NAME,
        for: [],
        options: {},
        trusting: false,
        testing: false,
        timeout: seconds,
        onError: 'tempfail',
        onTimeout: 'tempfail',
        create: () => courierChainModule(chain),
      },
    ],
  };
}

/**
 * Reads and checks the daemon's configuration file in either format.
 * @throws ConfigError (with file and line) or SettingsError
 */
export async function loadCourierSettings(path: string, options: { onWarning?: (message: string) => void } = {}): Promise<DaemonSettings> {
  if (!usesChainFormat(await readFile(path, 'utf8'))) return loadSettings(path, options);
  const settings = settingsFromConfiguration(await loadConfiguration(path));
  await checkConfigurationTrust(path, settings, options);
  return settings;
}
