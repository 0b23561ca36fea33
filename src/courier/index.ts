/**
 * milterkit for Courier global filters (`milterkit/courier`): what filter modules are written
 * against (their contract, the control-file helpers, Courier's configuration, the message), and
 * the daemon that courierfilter starts, for programs that embed it.
 *
 * @packageDocumentation
 */
export type { CourierFilterModule, DoFilter, FilterContext, InitContext } from './module-api.js';
export type { CourierLogger } from './logging.js';
export * as control from './helpers/control.js';
export { CourierConfig } from './helpers/config.js';
export { CourierMessage, type HeaderField as CourierHeaderField } from './helpers/message.js';
export { RequestAnsweredError } from './helpers/request-scope.js';
export { MimeLimitError, scanMimeStructure, type MimePart, type MimeScanLimits, type MimeScanOptions, type MimeStructure } from './helpers/mime-structure.js';
export { CourierFilterDaemon, AlreadyRunningError, type CourierDaemonOptions } from './daemon.js';
export { FilterChain } from './chain.js';
export type { ModuleKind, LoadedModule } from './module-loader.js';
export { loadSettings, SettingsError, type DaemonSettings, type ModuleSettings, type FailureOutcome } from './settings.js';
export { discoverCourierDirectories, type CourierDirectories } from './paths.js';
export type { FilterRequest } from './request.js';
export type { FilterReply } from './reply.js';
