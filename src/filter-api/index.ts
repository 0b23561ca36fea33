/**
 * milterkit/filters: one filter API for every MTA. A filter is written once with
 * {@link defineFilter}, put in a {@link Chain} with other filters, and run as a milter (Postfix,
 * Sendmail), as a Courier global filter, or offline with the test kit.
 *
 * @packageDocumentation
 */
export * from './contract.js';
export * from './decisions.js';
export * from './transaction.js';
export { HeaderList, HeaderEditError, type HeaderField } from './headers.js';
export { Edits, EditError, type EditKind, type BodyInput, type EditLimits } from './draft.js';
export { MessageView, type MessageContent } from './message.js';
export { OptionsError, validateOptions } from './options.js';
export {
  Chain,
  chainNeeds,
  ChainConfigError,
  ConnectionRun,
  MessageRun,
  FAILURE_POLICIES,
  DEFAULT_TIMEOUT_MS,
  type ChainConfig,
  type ChainEntryConfig,
  type ChainEntry,
  type ChainNeeds,
  type FailurePolicy,
  type MessageOutcome,
  type StageOutcome,
  type RecipientOutcome,
} from './chain.js';
export { ConfigError, parseConfig, readConfig, startChain, type Configuration, type ConfigLoadOptions } from './config.js';
export { CONFIG_SCHEMA, type ConfigFile, type ChainEntrySpec } from './config-schema.js';
