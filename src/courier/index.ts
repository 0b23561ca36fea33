/**
 * milterkit for Courier global filters: the daemon that courierfilter starts, its module chain,
 * and the helpers modules use (Courier configuration, control files, in-place message rewrite).
 *
 * @packageDocumentation
 */
export { FilterChain } from './chain.js';
export { CourierFilterDaemon, AlreadyRunningError, type CourierDaemonOptions } from './daemon.js';
export type { CourierFilterModule, DoFilter, FilterContext, InitContext } from './module-api.js';
export { BUILTIN_MODULES, loadFilterModule } from './module-loader.js';
export { discoverCourierDirectories, parseCourierConfigOutput, DEBIAN_COURIER_DIRECTORIES, type CourierDirectories } from './paths.js';
export { formatReply, parseModuleReply, replyEffect, InvalidReplyError, type FilterReply, type ReplyEffect } from './reply.js';
export { parseRequest, MalformedRequestError, type FilterRequest } from './request.js';
export { loadSettings, parseSettings, SettingsError, type DaemonSettings, type ModuleSettings, type FailureOutcome } from './settings.js';
export type { CourierLogger } from './logging.js';
export * as control from './helpers/control.js';
export { CourierConfig, compareVersions } from './helpers/config.js';
export { CourierMessage, type HeaderField } from './helpers/message.js';
